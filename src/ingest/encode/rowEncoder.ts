import { hash as digest } from 'node:crypto';
import { FieldKind, type RecordSink } from '../read/csvRecordReader.js';
import { DESCRIPTIVE_COLUMNS, TYPED_COLUMNS, type ColumnRole } from '../../feed/columns.js';
import { DigestSet } from './digestSet.js';
import type { FileLayout } from '../../feed/layout.js';
import { typeRecord } from '../../feed/typing.js';

const QUOTE = 34;
const UNIT_SEPARATOR = 0x1f;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** After line_no on a data row: err, raw_text, raw_bytes, raw_length all NULL, then id_value follows. */
const NO_ERROR = '\t\\N\t\\N\t\\N\t\\N\t';

/** Counters the encoder keeps while it writes. */
export interface EncoderCounts {
  vinEmptyRows: number;
  lotEmptyRows: number;
  /** Rows sent by content address only. */
  knownRows: number;
}

/**
 * Turns each record the reader finds into one line of `COPY ... (FORMAT text)` for the load table
 * (src/ingest/copy/loadTable.ts): row position, the Id cell, the payload (values joined by U+001F, or a text[]
 * literal when a value holds U+001F itself), its content address, and the typed staging columns.
 * Parse errors become lines with the error columns filled. Typing runs here, on Node's core, while
 * PostgreSQL is busy with the COPY on its own.
 */
export class RowEncoder implements RecordSink {
  readonly counts: EncoderCounts = { vinEmptyRows: 0, lotEmptyRows: 0, knownRows: 0 };
  private out: Buffer;
  private len = 0;
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private hashInput = Buffer.allocUnsafe(64 * 1024);
  private readonly valueIndexes: number[];
  private readonly role: Readonly<Partial<Record<ColumnRole, number>>>;
  private readonly descriptiveSources: ReadonlyArray<number | undefined>;
  private readonly prefixJoined: Buffer;
  private readonly prefixArray: Buffer;
  private readonly nullTail: string;
  private readonly knownTail: string;
  /** Decoded value bytes of the current record, per file column: [start, end) in scratch. */
  private readonly starts: number[];
  private readonly ends: number[];

  /**
   * @param known content addresses (uuid text) certainly stored already: for those rows only the
   *   address is sent, not the values and typed columns (the steady state: ~99 % of a new file).
   */
  constructor(private readonly layout: FileLayout, private readonly emit: (chunk: Buffer) => void,
    private readonly known: DigestSet = new DigestSet(Buffer.alloc(0)), private readonly chunkBytes = 1 << 20) {
    this.out = Buffer.allocUnsafe(chunkBytes + 65536);
    this.valueIndexes = layout.names.map((_, i) => i).filter((i) => i !== layout.idIndex);
    this.role = layout.roleIndex;
    this.descriptiveSources = DESCRIPTIVE_COLUMNS.map(([, role]) => layout.roleIndex[role]);
    this.prefixJoined = Buffer.from(`${layout.layoutHash}j`);
    this.prefixArray = Buffer.from(`${layout.layoutHash}a`);
    // After raw_length: id_value, hash, lot, vals_text, vals, the typed and the descriptive columns, all NULL.
    this.nullTail = '\t\\N'.repeat(5 + TYPED_COLUMNS.length + DESCRIPTIVE_COLUMNS.length);
    // After lot: vals_text, vals, the typed and the descriptive columns, all NULL (then the residual).
    this.knownTail = '\t\\N'.repeat(2 + TYPED_COLUMNS.length + DESCRIPTIVE_COLUMNS.length);
    this.starts = new Array<number>(layout.columns).fill(0);
    this.ends = new Array<number>(layout.columns).fill(0);
  }

  row(buf: Buffer, spans: readonly number[], lineNo: number, _recordNo: number, start: number, end: number, escapes: boolean, residual: Buffer | undefined): void {
    const hasSeparator = buf.subarray(start, end).indexOf(UNIT_SEPARATOR) !== -1;
    const md5 = this.contentAddress(buf, spans, start, end, escapes, hasSeparator);
    const idIndex = this.layout.idIndex;

    // 1. Known payload: the address alone (the steady state). Empty VIN / Lot are counted on the raw
    //    spans: a field is empty exactly when its inner bytes are.
    if (this.known.has(md5)) {
      this.counts.knownRows++;
      this.countUnknownSpans(buf, spans);
      this.uint(lineNo);
      this.ascii(NO_ERROR);
      if (idIndex === -1) this.ascii('\\N');
      else this.field(buf, spans[idIndex * 3]!, spans[idIndex * 3 + 1]!, spans[idIndex * 3 + 2]! as FieldKind);
      this.byte(9);
      this.uuid(md5);
      this.byte(9);
      this.lotField(buf, spans);
      this.ascii(this.knownTail);
      this.residual(residual);
      if (this.len >= this.chunkBytes) this.flush();
      return;
    }

    // 2. New payload: decode every field into scratch (quotes un-doubled), remembering where each lies.
    let total = 0;
    for (let i = 0; i < spans.length; i += 3) total += spans[i + 1]! - spans[i]!;
    if (this.scratch.length < total * 2 + 64) this.scratch = Buffer.allocUnsafe(total * 2 + 65536);
    const s = this.scratch;
    let p = 0;
    for (let f = 0, i = 0; i < spans.length; f++, i += 3) {
      this.starts[f] = p;
      p += decodeInto(buf, spans[i]!, spans[i + 1]!, spans[i + 2]! as FieldKind, s, p);
      this.ends[f] = p;
    }
    this.countUnknowns(s, this.starts, this.ends);

    // Payload: values joined by U+001F, or a text[] literal when a value holds U+001F itself.
    const payloadStart = p;
    if (hasSeparator) {
      s[p++] = 123; // {
      this.valueIndexes.forEach((f, k) => {
        if (k > 0) s[p++] = 44;
        s[p++] = QUOTE;
        for (let j = this.starts[f]!; j < this.ends[f]!; j++) {
          const b = s[j]!;
          if (b === QUOTE || b === 92) s[p++] = 92;
          s[p++] = b;
        }
        s[p++] = QUOTE;
      });
      s[p++] = 125; // }
    } else {
      const idx = this.valueIndexes;
      for (let k = 0; k < idx.length; k++) {
        if (k > 0) s[p++] = UNIT_SEPARATOR;
        p += copyBytes(s, this.starts[idx[k]!]!, this.ends[idx[k]!]!, s, p);
      }
    }

    // 3. The load-table line: line_no, err, raw_text, raw_bytes, raw_length, id_value, hash, lot, vals_text, vals,
    //    typed columns, descriptive values
    this.uint(lineNo);
    this.ascii(NO_ERROR);
    if (this.layout.idIndex === -1) this.ascii('\\N');
    else this.escaped(s, this.starts[this.layout.idIndex]!, this.ends[this.layout.idIndex]!);
    this.byte(9);
    this.uuid(md5);
    this.byte(9);
    this.lotField(buf, spans);
    this.byte(9);
    if (hasSeparator) {
      this.ascii('\\N\t');
      this.escaped(s, payloadStart, p);
    } else {
      this.escaped(s, payloadStart, p);
      this.ascii('\t\\N');
    }
    this.byte(9);
    this.typed(s);
    this.descriptive(s);
    this.residual(residual);
    if (this.len >= this.chunkBytes) this.flush();
  }

  error(lineNo: number, _recordNo: number, message: string, raw: Buffer, rawLength: number, residual: Buffer | undefined): void {
    this.ascii(`${lineNo}\t`);
    this.text(message);
    this.byte(9);
    this.text(raw.toString('utf8').replace(/\0/g, '\uFFFD'));
    this.ascii(`\t\\\\x${raw.toString('hex')}\t${rawLength}${this.nullTail}`);
    this.residual(residual);
    if (this.len >= this.chunkBytes) this.flush();
  }

  /** The last column, the record's exact bytes when they are not its canonical rendering, and the line's end. */
  private residual(bytes: Buffer | undefined): void {
    if (bytes === undefined) {
      this.ascii('\t\\N\n');
      return;
    }
    this.ensure(bytes.length * 2 + 8);
    this.ascii('\t\\\\x');
    this.len += this.out.write(bytes.toString('hex'), this.len, 'latin1');
    this.byte(10);
  }

  /** Hands on what is buffered. */
  flush(): void {
    if (this.len === 0) return;
    this.emit(Buffer.from(this.out.subarray(0, this.len)));
    this.len = 0;
  }

  /** A content address in uuid text form, written straight from its 16 bytes (no string per row). */
  private uuid(d: Buffer): void {
    this.ensure(36);
    const o = this.out;
    let n = this.len;
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) o[n++] = 45; // -
      const b = d[i]!;
      o[n++] = HEX[b >> 4]!;
      o[n++] = HEX[b & 15]!;
    }
    this.len = n;
  }

  /** The trimmed Lot number of every row (the core upsert finds a lot's rows by it), or NULL. */
  private lotField(buf: Buffer, spans: readonly number[]): void {
    const f = this.role.lotNumber;
    if (f === undefined) { this.ascii('\\N'); return; }
    const [a, b] = trimSpaces(buf, spans[f * 3]!, spans[f * 3 + 1]!);
    if (a === b) this.ascii('\\N');
    else this.field(buf, a, b, spans[f * 3 + 2]! as FieldKind);
  }

  /** Counts rows with an empty VIN / Lot number (audit.v_unknown_rate), field f lying in b at [starts[f], ends[f]). */
  private countUnknowns(b: Buffer, starts: readonly number[], ends: readonly number[]): void {
    const lot = this.role.lotNumber;
    const vin = this.role.vin;
    if (lot !== undefined && isBlank(b, starts[lot]!, ends[lot]!, false)) this.counts.lotEmptyRows++;
    if (vin !== undefined && isBlank(b, starts[vin]!, ends[vin]!, true)) this.counts.vinEmptyRows++;
  }

  /** The same on the reader's raw spans (start, end, kind per field): a field is empty exactly when its inner bytes are. */
  private countUnknownSpans(b: Buffer, spans: readonly number[]): void {
    const lot = this.role.lotNumber;
    const vin = this.role.vin;
    if (lot !== undefined && isBlank(b, spans[lot * 3]!, spans[lot * 3 + 1]!, false)) this.counts.lotEmptyRows++;
    if (vin !== undefined && isBlank(b, spans[vin * 3]!, spans[vin * 3 + 1]!, true)) this.counts.vinEmptyRows++;
  }

  /**
   * md5 over (layout hash, storage form, parse mode, the record's bytes without the Id cell's bytes,
   * with the position of the cut). The same bytes read the same way always give the same values, so
   * equal addresses mean equal values, and the Id cell, which shifts between downloads, is left out.
   */
  private contentAddress(buf: Buffer, spans: readonly number[], start: number, end: number, escapes: boolean, array: boolean): Buffer {
    const idIndex = this.layout.idIndex;
    const cutStart = idIndex === -1 ? end : spans[idIndex * 3]!;
    const cutEnd = idIndex === -1 ? end : spans[idIndex * 3 + 1]!;
    const need = 48 + (end - start);
    if (this.hashInput.length < need) this.hashInput = Buffer.allocUnsafe(need + 65536);
    const h = this.hashInput;
    let p = copyBytes(array ? this.prefixArray : this.prefixJoined, 0, this.prefixJoined.length, h, 0);
    h[p++] = escapes ? 1 : 2;
    h.writeUInt32LE(cutStart - start, p);
    p += 4;
    p += buf.copy(h, p, start, cutStart);
    p += buf.copy(h, p, cutEnd, end);
    return digest('md5', h.subarray(0, p), 'buffer') as unknown as Buffer;
  }

  /** One field's value, decoded, COPY-escaped. */
  private field(buf: Buffer, start: number, end: number, kind: FieldKind): void {
    const q = kind === FieldKind.Plain || kind === FieldKind.Verbatim ? -1 : buf.indexOf(QUOTE, start);
    if (q === -1 || q >= end) {
      this.escaped(buf, start, end);
      return;
    }
    const tmp = Buffer.allocUnsafe(end - start);
    this.escaped(tmp, 0, decodeInto(buf, start, end, kind, tmp, 0));
  }

  /** The typed columns of the current record (values decoded in s), as tab-separated COPY fields. */
  private typed(s: Buffer): void {
    const values = typeRecord((role) => {
      const f = this.role[role];
      return f === undefined ? null : s.toString('utf8', this.starts[f]!, this.ends[f]!);
    });
    for (let c = 0; c < TYPED_COLUMNS.length; c++) {
      if (c > 0) this.byte(9);
      const [name, type] = TYPED_COLUMNS[c]!;
      const v = values[name];
      if (v === null || v === undefined) this.ascii('\\N');
      else if (type === 'text') this.text(v); // text from the file: escape
      else this.ascii(v); // dates, numbers, booleans: ASCII with nothing to escape
    }
  }

  /**
   * The descriptive values of the current record (decoded in s), each trimmed of spaces and empty as
   * NULL, as the core tables store them: `nullif(btrim(value), '')`. A tab before each.
   */
  private descriptive(s: Buffer): void {
    for (const f of this.descriptiveSources) {
      this.byte(9);
      if (f === undefined) { this.ascii('\\N'); continue; }
      const [a, b] = trimSpaces(s, this.starts[f]!, this.ends[f]!);
      if (a === b) this.ascii('\\N');
      else this.escaped(s, a, b);
    }
  }

  /** Bytes with COPY text-format escapes for backslash, tab, LF and CR. */
  private escaped(src: Buffer, start: number, end: number): void {
    this.ensure((end - start) * 2);
    const o = this.out;
    let n = this.len;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      if (b === 92) { o[n++] = 92; o[n++] = 92; }
      else if (b === 9) { o[n++] = 92; o[n++] = 116; }
      else if (b === 10) { o[n++] = 92; o[n++] = 110; }
      else if (b === 13) { o[n++] = 92; o[n++] = 114; }
      else o[n++] = b;
    }
    this.len = n;
  }

  private text(v: string): void {
    if (isPlainAscii(v)) { this.ascii(v); return; }
    const b = Buffer.from(v, 'utf8');
    this.escaped(b, 0, b.length);
  }

  private ascii(v: string): void {
    this.ensure(v.length);
    // Most are a few bytes (`\\N`, a date, an amount): a loop beats the binding call of write().
    if (v.length > 32) { this.len += this.out.write(v, this.len, 'latin1'); return; }
    const o = this.out;
    let n = this.len;
    for (let i = 0; i < v.length; i++) o[n++] = v.charCodeAt(i);
    this.len = n;
  }

  /** A non-negative integer in decimal. */
  private uint(v: number): void {
    this.ensure(16);
    const o = this.out;
    let n = this.len;
    if (v === 0) { o[n++] = 48; this.len = n; return; }
    let digits = 0;
    for (let x = v; x > 0; x = Math.floor(x / 10)) digits++;
    for (let i = n + digits - 1, x = v; i >= n; i--, x = Math.floor(x / 10)) o[i] = 48 + (x % 10);
    this.len = n + digits;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.out[this.len++] = b;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.out.length) return;
    this.flush();
    if (n > this.out.length) this.out = Buffer.allocUnsafe(n + 65536);
  }
}

/** Writes a field's value (quotes un-doubled where the reading had `""` escapes) at dst[at]; returns its length. */
function decodeInto(buf: Buffer, start: number, end: number, kind: FieldKind, dst: Buffer, at: number): number {
  const q = kind === FieldKind.Plain || kind === FieldKind.Verbatim ? -1 : buf.indexOf(QUOTE, start);
  if (q === -1 || q >= end) return copyBytes(buf, start, end, dst, at);
  let p = at;
  for (let j = start; j < end; j++) {
    const b = buf[j]!;
    dst[p++] = b;
    if (b === QUOTE && j + 1 < end && buf[j + 1] === QUOTE) j++;
  }
  return p - at;
}

/** Buffer.copy costs ~0.5 µs a call in Node 20; feed values are short, so copy them by hand. */
function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  const n = end - start;
  if (n > 64) return src.copy(dst, at, start, end);
  for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  return n;
}

/** Whether [start, end) is empty once trimmed (of spaces; for a VIN, also of tabs, CR and LF). */
function isBlank(b: Buffer, start: number, end: number, vin: boolean): boolean {
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c !== 32 && !(vin && (c === 9 || c === 13 || c === 10))) return false;
  }
  return true;
}

/** [start, end) without leading and trailing ASCII spaces (PostgreSQL's btrim default). */
function trimSpaces(b: Buffer, start: number, end: number): [number, number] {
  while (start < end && b[start] === 32) start++;
  while (end > start && b[end - 1] === 32) end--;
  return [start, end];
}

/** Only printable ASCII: nothing COPY would need escaped, one byte per character. */
function isPlainAscii(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 32 || c > 126 || c === 92) return false;
  }
  return true;
}
