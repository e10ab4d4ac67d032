import { isUtf8 } from 'node:buffer';

/**
 * A streaming, byte-level CSV record reader for the Copart feed: it hands each record's fields, or a
 * parse error with the line number and the raw bytes, to a sink (RowEncoder), and notes the first
 * record a strict RFC 4180 reader would read differently (`nonStrict`). Its rules (quoted and bare
 * quotes, line breaks in values, how a bad record costs one line, blank lines): docs/feed.md, *Records and their quirks*.
 */

/** How a field's bytes become its value. */
export const FieldKind = {
  /** Unquoted, no quote inside: the bytes are the value. */
  Plain: 0,
  /** Quoted with standard `""` escapes only: the inner bytes are the value, still escaped. */
  Escaped: 1,
  /** Quoted with bare quotes, read with `""` escapes: decode `""` to `"`, keep bare ones. */
  Decode: 2,
  /** Unquoted with quotes inside, or read without escapes: the bytes are the value verbatim. */
  Verbatim: 3,
} as const;
export type FieldKind = (typeof FieldKind)[keyof typeof FieldKind];

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** Receives what the reader finds. `spans` holds (start, end, kind) triples into `buf`. */
export interface RecordSink {
  /**
   * A data record: buf[start, end) without its line ending; `escapes`: read with `""` escapes (false:
   * the no-escape reading that made a record with a value ending in a bare quote fit). `residual`: the
   * record's exact bytes (with the blank lines before it and its line ending) when the canonical
   * rendering of its values would not give them back (docs/storage.md, *Byte-exact export*).
   */
  row(buf: Buffer, spans: readonly number[], lineNo: number, recordNo: number, start: number, end: number, escapes: boolean, residual: Buffer | undefined): void;
  /** `residual`: the record's exact bytes as for row(), always given unless they were not kept (lost). */
  error(lineNo: number, recordNo: number, message: string, raw: Buffer, rawLength: number, residual: Buffer | undefined): void;
}

export interface RecordReaderOptions {
  /** Fields every record must have (the header's count). */
  readonly columns: number;
  /** Physical line number of the first byte pushed (the header is line 1). */
  readonly firstLineNo: number;
  /** The header's line ending; PostgreSQL's COPY wants every record to end the same way. */
  readonly eol: 'LF' | 'CRLF' | 'none';
  /** A record longer than this is a parse error. */
  readonly maxRecordBytes: number;
  /** Check UTF-8 validity and NUL bytes per record (the tolerant path; COPY checks them itself). */
  readonly checkEncoding: boolean;
}

/**
 * The first record a strict RFC 4180 reader (PostgreSQL's COPY among them) would not read as this
 * reader does: recorded on the file (raw.csv_files.first_irregularity) for operators.
 */
export interface NonStrict {
  readonly lineNo: number;
  readonly reason: string;
}

export class CsvRecordReader {
  /** Data records seen: rows + errors. */
  records = 0;
  rows = 0;
  errors = 0;
  blankLines = 0;
  lfRecords = 0;
  crlfRecords = 0;
  /** Set at the first record that COPY would not read exactly like this reader. */
  nonStrict: NonStrict | undefined;
  /** Records handed on with a residual (their bytes are not the canonical rendering of their values). */
  residuals = 0;
  /** Why the file's bytes cannot be given back exactly (a record too long to keep), or undefined. */
  lost: string | undefined;

  /** Blank lines read since the last record: they go with the next record's residual, or the trailer. */
  private gap: Buffer[] = [];
  private gapBytes = 0;

  private pending: Buffer | undefined;
  private lineNo: number;
  /** Bytes of an over-long line still to be skipped up to its newline. */
  private skipping = false;
  private readonly spans: number[] = [];
  private readonly alt: number[] = [];
  private parseStrict = true;
  private readonly result: ParseResult = { strict: true };

  constructor(private readonly options: RecordReaderOptions) {
    this.lineNo = options.firstLineNo;
  }

  push(chunk: Buffer, sink: RecordSink): void {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    this.process(buf, false, sink);
  }

  end(sink: RecordSink): void {
    const buf = this.pending;
    this.pending = undefined;
    if (buf !== undefined && buf.length > 0) this.process(buf, true, sink);
  }

  /** After end(): the blank lines after the last record (the file's last bytes), or an empty buffer. */
  trailer(): Buffer {
    return Buffer.concat(this.gap);
  }

  /**
   * Keeps a blank line's bytes for the next record's residual, up to maxRecordBytes of them in a row:
   * a file padded with megabytes of newlines must not fill memory; past that they are counted only
   * and the file cannot be given back exactly.
   */
  private keepBlank(buf: Buffer, start: number, next: number): void {
    if (this.gapBytes + (next - start) > this.options.maxRecordBytes) {
      this.lost ??= `line ${this.lineNo}: more than ${this.options.maxRecordBytes} bytes of blank lines in a row (maxRecordBytes) were not kept`;
      return;
    }
    this.gap.push(Buffer.from(buf.subarray(start, next)));
    this.gapBytes += next - start;
  }

  /** The bytes of a record that is not in canonical form: the blank lines before it, and buf[start, next). */
  private residualOf(buf: Buffer, start: number, next: number): Buffer {
    this.residuals++;
    const own = buf.subarray(start, next);
    if (this.gap.length === 0) return Buffer.from(own);
    const out = Buffer.concat([...this.gap, own]);
    this.gap = [];
    this.gapBytes = 0;
    return out;
  }

  private markNonStrict(reason: string, lineNo: number): void {
    if (this.nonStrict === undefined) this.nonStrict = { lineNo, reason };
  }

  private process(buf: Buffer, final: boolean, sink: RecordSink): void {
    const { columns, maxRecordBytes } = this.options;
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos);
      if (this.skipping) {
        if (nl === -1) return; // the rest of an over-long line: drop it, stay in skip mode
        this.skipping = false;
        pos = nl + 1;
        this.lineNo++;
        continue;
      }
      if (nl === -1 && !final) {
        // A CR at the end may be the first half of a CRLF: it is not part of the record.
        if (buf.length - pos - (buf[buf.length - 1] === CR ? 1 : 0) > maxRecordBytes) {
          // Its tail is skipped unread, so the file's bytes cannot all be given back.
          this.lost ??= `line ${this.lineNo}: a record longer than ${maxRecordBytes} bytes (maxRecordBytes) was not kept whole`;
          this.gap = [];
          this.gapBytes = 0;
          this.recordError(sink, buf, pos, buf.length, -1, this.lineNo, `record longer than ${maxRecordBytes} bytes (maxRecordBytes)`);
          this.skipping = true;
          return;
        }
        this.pending = Buffer.from(buf.subarray(pos));
        return;
      }
      const lineEnd = nl === -1 ? buf.length : nl;
      const contentEnd = lineEnd > pos && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
      const next = nl === -1 ? buf.length : nl + 1;
      if (contentEnd === pos) {
        this.keepBlank(buf, pos, next);
        this.blankLines++;
        this.markNonStrict('empty line', this.lineNo);
        this.lineNo++;
        pos = next;
        continue;
      }
      if (contentEnd - pos > maxRecordBytes) {
        this.recordError(sink, buf, pos, contentEnd, next, this.lineNo, `record longer than ${maxRecordBytes} bytes (maxRecordBytes)`);
        this.lineNo++;
        pos = next;
        continue;
      }
      const eol = nl === -1 ? 'none' : contentEnd < lineEnd ? 'CRLF' : 'LF';

      const n1 = this.parse(buf, pos, contentEnd, true, this.spans);
      if (n1 === columns) {
        this.acceptRow(sink, buf, this.spans, pos, contentEnd, next, eol, this.parseStrict, 1, true);
        pos = next;
        continue;
      }
      if (n1 >= 0) {
        if (this.acceptNoEscapeReading(sink, buf, pos, contentEnd, next, eol)) {
          pos = next;
          continue;
        }
        this.recordError(sink, buf, pos, contentEnd, next, this.lineNo, this.withEncoding(`expected ${columns} fields, found ${n1}`, buf, pos, contentEnd));
        this.lineNo++;
        pos = next;
        continue;
      }

      // The line ends inside a quoted field: the record continues on the following lines.
      let lines = 1;
      let scan = nl;
      let outcome: 'row' | 'error' | 'wait' = 'wait';
      let message = '';
      let recordEnd = contentEnd;
      let recordEol: 'LF' | 'CRLF' | 'none' = eol;
      let recordNext = next;
      while (true) {
        if (scan === -1) {
          outcome = 'error';
          message = 'unterminated quoted field (reached the end of the file)';
          break;
        }
        const nl2 = buf.indexOf(LF, scan + 1);
        if (nl2 === -1 && !final) {
          if (buf.length - pos - (buf[buf.length - 1] === CR ? 1 : 0) > maxRecordBytes) {
            outcome = 'error';
            message = `unterminated quoted field (record longer than ${maxRecordBytes} bytes)`;
          }
          break;
        }
        const end2 = nl2 === -1 ? buf.length : nl2;
        const content2 = end2 > scan + 1 && buf[end2 - 1] === CR ? end2 - 1 : end2;
        lines++;
        if (content2 - pos > maxRecordBytes) {
          outcome = 'error';
          message = `unterminated quoted field (record longer than ${maxRecordBytes} bytes)`;
          break;
        }
        const n = this.parse(buf, pos, content2, true, this.spans);
        if (n >= 0) {
          if (n === columns) {
            outcome = 'row';
            recordEnd = content2;
            recordEol = nl2 === -1 ? 'none' : content2 < end2 ? 'CRLF' : 'LF';
            recordNext = nl2 === -1 ? buf.length : nl2 + 1;
          } else {
            outcome = 'error';
            message = `unterminated quoted field on this line (read on over ${lines} lines it has ${n} fields, expected ${columns})`;
          }
          break;
        }
        scan = nl2;
      }
      if (outcome === 'wait') {
        this.pending = Buffer.from(buf.subarray(pos));
        return;
      }
      if (outcome === 'row') {
        this.acceptRow(sink, buf, this.spans, pos, recordEnd, recordNext, recordEol, this.parseStrict, lines, true);
        pos = recordNext;
        continue;
      }
      // RFC 4180 found no record here. The first line alone may still be one whose value ends in a bare
      // quote (`"12"",`); if not, only the first line is the bad record and the next starts a new one.
      if (this.acceptNoEscapeReading(sink, buf, pos, contentEnd, next, eol)) {
        pos = next;
        continue;
      }
      this.recordError(sink, buf, pos, contentEnd, next, this.lineNo, this.withEncoding(message, buf, pos, contentEnd));
      this.lineNo++;
      pos = next;
    }
  }

  /** A field-count error says first when the record also holds a NUL or invalid UTF-8 (a torn write, a binary tail). */
  private withEncoding(message: string, buf: Buffer, start: number, end: number): string {
    const problem = this.options.checkEncoding ? encodingProblem(buf, start, end) : undefined;
    return problem === undefined ? message : `${problem} (and ${message})`;
  }

  /** The line read without `""` escapes, accepted when that gives the header's field count. */
  private acceptNoEscapeReading(sink: RecordSink, buf: Buffer, start: number, end: number, next: number, eol: 'LF' | 'CRLF' | 'none'): boolean {
    if (this.parse(buf, start, end, false, this.alt) !== this.options.columns) return false;
    this.markNonStrict('bare quote', this.lineNo);
    this.acceptRow(sink, buf, this.alt, start, end, next, eol, false, 1, false);
    return true;
  }

  /** `next`: where the following record starts (after this one's line ending). */
  private acceptRow(sink: RecordSink, buf: Buffer, spans: readonly number[], start: number, end: number, next: number,
    eol: 'LF' | 'CRLF' | 'none', strict: boolean, lines: number, escapes: boolean): void {
    const lineNo = this.lineNo;
    this.lineNo += lines;
    if (eol === 'LF') this.lfRecords++;
    else if (eol === 'CRLF') this.crlfRecords++;
    if (this.options.checkEncoding) {
      const problem = encodingProblem(buf, start, end);
      if (problem !== undefined) {
        this.recordError(sink, buf, start, end, next, lineNo, problem);
        return;
      }
    }
    if (!strict) this.markNonStrict('quote inside a field', lineNo);
    else if (eol !== 'none' && this.options.eol !== 'none' && eol !== this.options.eol) this.markNonStrict(`${eol} line ending in a ${this.options.eol} file`, lineNo);
    this.records++;
    this.rows++;
    const canonical = escapes && this.gap.length === 0 && eol === this.canonicalEol && allQuoted(spans);
    sink.row(buf, spans, lineNo, this.records, start, end, escapes, canonical ? undefined : this.residualOf(buf, start, next));
  }

  /** The line ending the canonical rendering uses: the header's (a file whose header has none has no records). */
  private get canonicalEol(): 'LF' | 'CRLF' | 'none' {
    return this.options.eol;
  }

  /** `next` -1: the record's end was not read (skipped as too long): no residual. */
  private recordError(sink: RecordSink, buf: Buffer, start: number, end: number, next: number, lineNo: number, message: string): void {
    this.records++;
    this.errors++;
    this.markNonStrict(message, lineNo);
    sink.error(lineNo, this.records, message, buf.subarray(start, Math.min(end, start + RAW_CAP)), end - start,
      next === -1 ? undefined : this.residualOf(buf, start, next));
  }

  private parse(buf: Buffer, start: number, end: number, escapes: boolean, out: number[]): number {
    const n = parseFields(buf, start, end, escapes, out, this.result);
    this.parseStrict = this.result.strict;
    return n;
  }
}

/** Whether every field was quoted with standard escapes only: the canonical rendering gives its bytes back. */
function allQuoted(spans: readonly number[]): boolean {
  for (let i = 2; i < spans.length; i += 3) if (spans[i] !== FieldKind.Escaped) return false;
  return true;
}

/** The raw bytes kept for a parse error (audit.parse_errors.raw_bytes). */
export const RAW_CAP = 64 * 1024;

/** Why a record's bytes are not text PostgreSQL can store, or undefined. */
function encodingProblem(buf: Buffer, start: number, end: number): string | undefined {
  const slice = buf.subarray(start, end);
  const nul = slice.indexOf(0);
  if (nul !== -1) return `NUL byte at byte ${nul + 1} of the record`;
  if (!isUtf8(slice)) return `invalid UTF-8 at byte ${firstInvalidUtf8(slice) + 1} of the record`;
  return undefined;
}


/** Offset of the first byte that is not part of a valid UTF-8 sequence. */
export function firstInvalidUtf8(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) n = 2;
    else if (c >= 0xf0 && c <= 0xf4) n = 3;
    else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
    }
    const cp = n === 2 ? ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) : n === 3 ? ((c & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) : 0x80;
    if ((n === 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n === 3 && (cp < 0x10000 || cp > 0x10ffff))) return i;
    i += n + 1;
  }
  return b.length;
}

/** Whether the last parseFields call saw only input COPY reads exactly like RFC 4180. */
export interface ParseResult {
  strict: boolean;
}

/**
 * Splits buf[start, end) into fields, appending (start, end, FieldKind) triples to out. Returns the
 * field count, or -1 when the record ends inside a quoted field. `escapes`: read `""` as one quote.
 */
export function parseFields(buf: Buffer, start: number, end: number, escapes: boolean, out: number[], result: ParseResult): number {
  // out is overwritten in place and cut to length at the end: `out.length = 0` first would drop its
  // backing store, and regrowing it to 3 × 59 numbers allocated ~4 KB per record.
  let k = 0;
  let strict = true;
  let count = 0;
  let i = start;
  while (true) {
    if (i < end && buf[i] === QUOTE) {
      let j = i + 1;
      let kind: FieldKind = FieldKind.Escaped;
      while (true) {
        const q = buf.indexOf(QUOTE, j);
        if (q === -1 || q >= end) {
          out.length = k;
          result.strict = strict;
          return -1;
        }
        const after = q + 1 < end ? buf[q + 1] : -1;
        if (after === QUOTE && escapes) {
          j = q + 2;
          continue;
        }
        if (after === COMMA || after === -1) {
          out[k++] = i + 1;
          out[k++] = q;
          out[k++] = escapes ? kind : FieldKind.Verbatim;
          count++;
          if (after === -1) {
            out.length = k;
            result.strict = strict;
            return count;
          }
          i = q + 2;
          break;
        }
        kind = FieldKind.Decode;
        strict = false;
        j = q + 1;
      }
    } else {
      let kind: FieldKind = FieldKind.Plain;
      let fe = i;
      for (; fe < end; fe++) {
        const b = buf[fe];
        if (b === COMMA) break;
        if (b === QUOTE) {
          kind = FieldKind.Verbatim; // COPY would start a quoted section here
          strict = false;
        } else if (b === CR) {
          strict = false; // COPY refuses an unquoted carriage return
        }
      }
      out[k++] = i;
      out[k++] = fe;
      out[k++] = kind;
      count++;
      if (fe === end) {
        out.length = k;
        result.strict = strict;
        return count;
      }
      i = fe + 1;
    }
  }
  }

/** The value of one field as a string (header names, tests). */
export function decodeField(buf: Buffer, start: number, end: number, kind: FieldKind): string {
  const text = buf.toString('utf8', start, end);
  return kind === FieldKind.Escaped || kind === FieldKind.Decode ? text.replaceAll('""', '"') : text;
}
