/**
 * Pure unit tests of the streaming CSV record reader (src/ingest/read/csvRecordReader.ts): the rules of its header
 * comment, the feed's quirks (docs/feed.md) and independence from how the bytes are cut into chunks.
 */
import { describe, expect, it } from 'vitest';
import {
  CsvRecordReader, FieldKind, decodeField, firstInvalidUtf8, parseFields, type ParseResult, type RecordReaderOptions, type RecordSink,
} from '../../src/ingest/read/csvRecordReader.js';
import { seededRandom } from '../../src/sample/feedGenerator.js';

interface Row {
  readonly fields: string[];
  readonly kinds: FieldKind[];
  readonly lineNo: number;
  readonly recordNo: number;
  readonly escapes: boolean;
  /** buf[start, end): the record's text without its line ending. */
  readonly text: string;
}

interface ParseError {
  readonly lineNo: number;
  readonly recordNo: number;
  readonly message: string;
  readonly raw: string;
  readonly rawHex: string;
  readonly rawLength: number;
}

interface Outcome {
  readonly rows: Row[];
  readonly errors: ParseError[];
  readonly counters: {
    readonly records: number;
    readonly rows: number;
    readonly errors: number;
    readonly blankLines: number;
    readonly lfRecords: number;
    readonly crlfRecords: number;
  };
  readonly nonStrict: { lineNo: number; reason: string } | undefined;
}

/** A sink that copies everything out of the reader's buffers at once (they are reused). */
class CollectingSink implements RecordSink {
  readonly rows: Row[] = [];
  readonly errors: ParseError[] = [];

  row(buf: Buffer, spans: readonly number[], lineNo: number, recordNo: number, start: number, end: number, escapes: boolean): void {
    expect(spans.length % 3).toBe(0);
    const fields: string[] = [];
    const kinds: FieldKind[] = [];
    for (let i = 0; i < spans.length; i += 3) {
      const kind = spans[i + 2]! as FieldKind;
      fields.push(decodeField(buf, spans[i]!, spans[i + 1]!, kind));
      kinds.push(kind);
    }
    this.rows.push({ fields, kinds, lineNo, recordNo, escapes, text: buf.toString('utf8', start, end) });
  }

  error(lineNo: number, recordNo: number, message: string, raw: Buffer, rawLength: number): void {
    this.errors.push({ lineNo, recordNo, message, raw: raw.toString('utf8'), rawHex: raw.toString('hex'), rawLength });
  }
}

const DEFAULTS: RecordReaderOptions = { columns: 3, firstLineNo: 2, eol: 'LF', maxRecordBytes: 1 << 20, checkEncoding: true };

function toBuffer(input: string | Buffer): Buffer {
  return typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
}

/** Cuts buf at the given chunk sizes (the last chunk takes the rest). */
function cut(buf: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let pos = 0;
  for (const size of sizes) {
    if (pos >= buf.length) break;
    chunks.push(buf.subarray(pos, pos + size));
    pos += size;
  }
  if (pos < buf.length) chunks.push(buf.subarray(pos));
  return chunks;
}

function bytewise(buf: Buffer): Buffer[] {
  return cut(buf, new Array<number>(buf.length).fill(1));
}


function randomChunks(buf: Buffer, rnd: () => number, max = 9): Buffer[] {
  const sizes: number[] = [];
  for (let n = 0; n < buf.length;) {
    const size = 1 + Math.floor(rnd() * max);
    sizes.push(size);
    n += size;
  }
  return cut(buf, sizes);
}

/** Feeds the chunks (copies, so the reader cannot rely on our buffers), then end(). */
function read(chunks: readonly Buffer[], options: Partial<RecordReaderOptions> = {}): Outcome {
  const reader = new CsvRecordReader({ ...DEFAULTS, ...options });
  const sink = new CollectingSink();
  for (const chunk of chunks) reader.push(Buffer.from(chunk), sink);
  reader.end(sink);
  // Invariants that hold for every input.
  expect(reader.records).toBe(reader.rows + reader.errors);
  expect(reader.rows).toBe(sink.rows.length);
  expect(reader.errors).toBe(sink.errors.length);
  const recordNos = [...sink.rows.map((r) => r.recordNo), ...sink.errors.map((e) => e.recordNo)].sort((a, b) => a - b);
  expect(recordNos).toEqual(Array.from({ length: reader.records }, (_, i) => i + 1));
  return {
    rows: sink.rows,
    errors: sink.errors,
    counters: {
      records: reader.records, rows: reader.rows, errors: reader.errors, blankLines: reader.blankLines,
      lfRecords: reader.lfRecords, crlfRecords: reader.crlfRecords,
    },
    nonStrict: reader.nonStrict === undefined ? undefined : { ...reader.nonStrict },
  };
}

function readWhole(input: string | Buffer, options: Partial<RecordReaderOptions> = {}): Outcome {
  return read([toBuffer(input)], options);
}

const fieldsOf = (o: Outcome): string[][] => o.rows.map((r) => r.fields);
const linesOf = (o: Outcome): number[] => o.rows.map((r) => r.lineNo);

/** Whole, byte by byte and in random chunks: the same outcome. */
function expectChunkingIndependent(input: string | Buffer, options: Partial<RecordReaderOptions> = {}, seed = 1): Outcome {
  const buf = toBuffer(input);
  const whole = read([buf], options);
  expect(read(bytewise(buf), options)).toEqual(whole);
  const rnd = seededRandom(seed);
  for (let k = 0; k < 5; k++) expect(read(randomChunks(buf, rnd), options)).toEqual(whole);
  // Every cut into two pieces.
  for (let i = 1; i < buf.length; i++) expect(read([buf.subarray(0, i), buf.subarray(i)], options)).toEqual(whole);
  return whole;
}

describe('parseFields', () => {
  const result: ParseResult = { strict: true };
  function fields(text: string | Buffer, escapes = true): { n: number; values: string[]; kinds: number[]; strict: boolean } {
    const buf = toBuffer(text);
    const out: number[] = [];
    const n = parseFields(buf, 0, buf.length, escapes, out, result);
    const values: string[] = [];
    const kinds: number[] = [];
    for (let i = 0; i < out.length; i += 3) {
      values.push(decodeField(buf, out[i]!, out[i + 1]!, out[i + 2]! as FieldKind));
      kinds.push(out[i + 2]!);
    }
    return { n, values, kinds, strict: result.strict };
  }

  it('reads quoted fields as Escaped, strict', () => {
    expect(fields('"1","CA - VALLEJO",""')).toEqual({
      n: 3, values: ['1', 'CA - VALLEJO', ''], kinds: [FieldKind.Escaped, FieldKind.Escaped, FieldKind.Escaped], strict: true,
    });
  });

  it('reads unquoted fields as Plain (v1 style), empty ones too', () => {
    expect(fields('1,1,"CA - VALLEJO",0')).toEqual({
      n: 4, values: ['1', '1', 'CA - VALLEJO', '0'], kinds: [FieldKind.Plain, FieldKind.Plain, FieldKind.Escaped, FieldKind.Plain], strict: true,
    });
    expect(fields('a,,')).toMatchObject({ n: 3, values: ['a', '', ''] });
    expect(fields('')).toMatchObject({ n: 1, values: [''], kinds: [FieldKind.Plain] });
    expect(fields('"a",')).toMatchObject({ n: 2, values: ['a', ''], kinds: [FieldKind.Escaped, FieldKind.Plain] });
  });

  it('decodes "" escapes, keeps commas and line breaks inside quotes', () => {
    expect(fields('"a ""quoted"" b","""","x,y\r\nz"')).toEqual({
      n: 3, values: ['a "quoted" b', '"', 'x,y\r\nz'], kinds: [FieldKind.Escaped, FieldKind.Escaped, FieldKind.Escaped], strict: true,
    });
  });

  it('keeps the feed\'s bare quote literally (Decode, not strict)', () => {
    expect(fields('"1","125" SLEEPER CAB","x"')).toEqual({
      n: 3, values: ['1', '125" SLEEPER CAB', 'x'], kinds: [FieldKind.Escaped, FieldKind.Decode, FieldKind.Escaped], strict: false,
    });
    // A bare quote next to an escaped one: `""` pairs from the left, the odd one is bare.
    expect(fields('"a"""b"')).toMatchObject({ n: 1, values: ['a""b'], kinds: [FieldKind.Decode], strict: false });
  });

  it('a quote inside an unquoted field is Verbatim and not strict', () => {
    expect(fields('a"b,c')).toEqual({ n: 2, values: ['a"b', 'c'], kinds: [FieldKind.Verbatim, FieldKind.Plain], strict: false });
  });

  it('a carriage return in an unquoted field is kept but not strict', () => {
    expect(fields('a\rb,c')).toMatchObject({ n: 2, values: ['a\rb', 'c'], strict: false });
  });

  it('returns -1 when the record ends inside a quoted field', () => {
    expect(fields('"a","b').n).toBe(-1);
    expect(fields('"a').n).toBe(-1);
    expect(fields('"').n).toBe(-1);
    // `"ab"c`: the quote before c is a bare quote, so the field never closes.
    expect(fields('"ab"c,d,e').n).toBe(-1);
    // `"12""` at the end: with escapes the last `""` is an escape, the field stays open...
    expect(fields('"a","12""').n).toBe(-1);
  });

  it('without escapes reads `"12"",` as a value ending in a bare quote (Verbatim)', () => {
    expect(fields('"1","12"","x"').n).toBe(2); // with escapes: `12"",` + `"x` run together
    expect(fields('"1","12"","x"', false)).toEqual({
      n: 3, values: ['1', '12"', 'x'], kinds: [FieldKind.Verbatim, FieldKind.Verbatim, FieldKind.Verbatim], strict: false,
    });
    expect(fields('"a","12""', false)).toMatchObject({ n: 2, values: ['a', '12"'] });
  });

  it('honours start/end and clears the output array', () => {
    const buf = Buffer.from('xx"a","b"\nyy');
    const out = [99, 99, 99, 99];
    const r: ParseResult = { strict: false };
    expect(parseFields(buf, 2, 9, true, out, r)).toBe(2);
    expect(out).toEqual([3, 4, FieldKind.Escaped, 7, 8, FieldKind.Escaped]);
    expect(r.strict).toBe(true);
  });
});

describe('decodeField', () => {
  const buf = Buffer.from('a ""b"" "c');
  it('decodes `""` only for Escaped and Decode', () => {
    expect(decodeField(buf, 0, buf.length, FieldKind.Escaped)).toBe('a "b" "c');
    expect(decodeField(buf, 0, buf.length, FieldKind.Decode)).toBe('a "b" "c');
    expect(decodeField(buf, 0, buf.length, FieldKind.Plain)).toBe('a ""b"" "c');
    expect(decodeField(buf, 0, buf.length, FieldKind.Verbatim)).toBe('a ""b"" "c');
  });
  it('decodes UTF-8 within the span', () => {
    const b = Buffer.from('xcafé,');
    expect(decodeField(b, 1, b.length - 1, FieldKind.Plain)).toBe('café');
  });
  it('FieldKind values are distinct small integers', () => {
    expect(FieldKind).toEqual({ Plain: 0, Escaped: 1, Decode: 2, Verbatim: 3 });
  });
});

describe('firstInvalidUtf8', () => {
  it.each([
    ['ascii', Buffer.from('abc'), 3],
    ['valid multi-byte', Buffer.from('café €𝄞'), Buffer.byteLength('café €𝄞')],
    ['Latin-1 é', Buffer.from([0x63, 0x61, 0x66, 0xe9]), 3],
    ['overlong 2-byte', Buffer.from([0x41, 0xc0, 0x80]), 1],
    ['overlong 3-byte', Buffer.from([0xe0, 0x80, 0x80]), 0],
    ['surrogate', Buffer.from([0x41, 0x42, 0xed, 0xa0, 0x80]), 2],
    ['above U+10FFFF', Buffer.from([0xf4, 0x90, 0x80, 0x80]), 0],
    ['truncated sequence', Buffer.from([0x41, 0xe2, 0x82]), 1],
    ['lone continuation byte', Buffer.from([0x80]), 0],
  ])('%s', (_name, buf, expected) => {
    expect(firstInvalidUtf8(buf)).toBe(expected);
  });
});

describe('CsvRecordReader', () => {
  it('reads plain quoted rows with line numbers, record numbers and LF counts', () => {
    const o = readWhole('"1","CA - VALLEJO","20251017"\n"2","b","0"\n');
    expect(o.rows).toEqual([
      { fields: ['1', 'CA - VALLEJO', '20251017'], kinds: [1, 1, 1], lineNo: 2, recordNo: 1, escapes: true, text: '"1","CA - VALLEJO","20251017"' },
      { fields: ['2', 'b', '0'], kinds: [1, 1, 1], lineNo: 3, recordNo: 2, escapes: true, text: '"2","b","0"' },
    ]);
    expect(o.errors).toEqual([]);
    expect(o.counters).toEqual({ records: 2, rows: 2, errors: 0, blankLines: 0, lfRecords: 2, crlfRecords: 0 });
    expect(o.nonStrict).toBeUndefined();
  });

  it('starts counting lines at firstLineNo', () => {
    expect(linesOf(readWhole('"1","a","b"\n"2","c","d"\n', { firstLineNo: 10 }))).toEqual([10, 11]);
  });

  it('decodes `""` escapes, empty fields and a lone quote', () => {
    const o = readWhole('"a ""quoted"" b","",""""\n');
    expect(fieldsOf(o)).toEqual([['a "quoted" b', '', '"']]);
    expect(o.nonStrict).toBeUndefined();
  });

  it('keeps a bare quote literally: "125" SLEEPER CAB" -> 125" SLEEPER CAB', () => {
    const o = readWhole('"1","a","b"\n"2","125" SLEEPER CAB","x"\n"3","c","d"\n');
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['2', '125" SLEEPER CAB', 'x'], ['3', 'c', 'd']]);
    expect(o.rows[1]).toMatchObject({ lineNo: 3, escapes: true, kinds: [FieldKind.Escaped, FieldKind.Decode, FieldKind.Escaped] });
    expect(o.errors).toEqual([]);
    // COPY would read that record differently: not for the fast path.
    expect(o.nonStrict).toEqual({ lineNo: 3, reason: 'quote inside a field' });
  });

  it('a value ending in a bare quote (`"12"",`) falls back to the no-escape reading', () => {
    const o = readWhole('"1","12"","x"\n"2","y","12""\n"3","a ""b""","c"\n');
    expect(fieldsOf(o)).toEqual([['1', '12"', 'x'], ['2', 'y', '12"'], ['3', 'a "b"', 'c']]);
    expect(o.rows.map((r) => r.escapes)).toEqual([false, false, true]);
    expect(o.rows[0]!.kinds).toEqual([FieldKind.Verbatim, FieldKind.Verbatim, FieldKind.Verbatim]);
    expect(linesOf(o)).toEqual([2, 3, 4]);
    expect(o.errors).toEqual([]);
    expect(o.nonStrict).toEqual({ lineNo: 2, reason: 'bare quote' });
  });

  it('reads unquoted fields (v1 style)', () => {
    const o = readWhole('1,1,"CA - VALLEJO",0\n2,2,"",\n', { columns: 4 });
    expect(fieldsOf(o)).toEqual([['1', '1', 'CA - VALLEJO', '0'], ['2', '2', '', '']]);
    expect(o.rows[0]!.kinds).toEqual([FieldKind.Plain, FieldKind.Plain, FieldKind.Escaped, FieldKind.Plain]);
    expect(o.nonStrict).toBeUndefined();
  });

  it('keeps commas and line breaks inside quoted fields; the next record\'s line number counts the extra lines', () => {
    const input = '"1","a, b","line1\nline2"\n"2","x","y"\n"3","p\nq\n\nr","z"\n"4","e","f"\n';
    const o = readWhole(input);
    expect(fieldsOf(o)).toEqual([['1', 'a, b', 'line1\nline2'], ['2', 'x', 'y'], ['3', 'p\nq\n\nr', 'z'], ['4', 'e', 'f']]);
    expect(linesOf(o)).toEqual([2, 4, 5, 9]);
    expect(o.rows.map((r) => r.recordNo)).toEqual([1, 2, 3, 4]);
    expect(o.rows[0]!.text).toBe('"1","a, b","line1\nline2"');
    // A blank line inside a quoted value is data, not a blank line.
    expect(o.counters).toEqual({ records: 4, rows: 4, errors: 0, blankLines: 0, lfRecords: 4, crlfRecords: 0 });
    expect(o.nonStrict).toBeUndefined();
  });

  it('a bare quote inside a multi-line value', () => {
    const o = readWhole('"1","a\nb" c","d"\n"2","e","f"\n');
    expect(fieldsOf(o)).toEqual([['1', 'a\nb" c', 'd'], ['2', 'e', 'f']]);
    expect(linesOf(o)).toEqual([2, 4]);
  });

  it('reads CRLF records and counts them', () => {
    const o = readWhole('"1","a","b"\r\n"2","c","d"\r\n', { eol: 'CRLF' });
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['2', 'c', 'd']]);
    expect(o.rows.map((r) => r.text)).toEqual(['"1","a","b"', '"2","c","d"']);
    expect(o.counters).toMatchObject({ lfRecords: 0, crlfRecords: 2 });
    expect(o.nonStrict).toBeUndefined();
  });

  it('reads mixed CRLF/LF, counts each, and flags the odd ending against the header\'s', () => {
    const input = '"1","a","b"\r\n"2","c","d"\n"3","e","f"\r\n';
    const crlf = readWhole(input, { eol: 'CRLF' });
    expect(fieldsOf(crlf)).toEqual([['1', 'a', 'b'], ['2', 'c', 'd'], ['3', 'e', 'f']]);
    expect(linesOf(crlf)).toEqual([2, 3, 4]);
    expect(crlf.counters).toMatchObject({ lfRecords: 1, crlfRecords: 2 });
    expect(crlf.nonStrict).toEqual({ lineNo: 3, reason: 'LF line ending in a CRLF file' });
    const lf = readWhole(input, { eol: 'LF' });
    expect(fieldsOf(lf)).toEqual(fieldsOf(crlf));
    expect(lf.nonStrict).toEqual({ lineNo: 2, reason: 'CRLF line ending in a LF file' });
  });

  it('keeps a CR inside a quoted multi-line value', () => {
    const o = readWhole('"1","x\r\ny","z"\r\n"2","a\rb","c"\r\n', { eol: 'CRLF' });
    expect(fieldsOf(o)).toEqual([['1', 'x\r\ny', 'z'], ['2', 'a\rb', 'c']]);
    expect(linesOf(o)).toEqual([2, 4]);
    expect(o.counters).toMatchObject({ lfRecords: 0, crlfRecords: 2 });
  });

  it('reads the last record without a final newline at end()', () => {
    const reader = new CsvRecordReader(DEFAULTS);
    const sink = new CollectingSink();
    reader.push(Buffer.from('"1","a","b"\n"2","c","d"'), sink);
    expect(sink.rows.map((r) => r.fields)).toEqual([['1', 'a', 'b']]);
    reader.end(sink);
    expect(sink.rows.map((r) => r.fields)).toEqual([['1', 'a', 'b'], ['2', 'c', 'd']]);
    expect(sink.rows[1]!.lineNo).toBe(3);
    // The last record has no line ending: neither counter.
    expect([reader.lfRecords, reader.crlfRecords]).toEqual([1, 0]);
    // end() twice is harmless.
    reader.end(sink);
    expect(reader.records).toBe(2);
  });

  it('a multi-line record that ends without a final newline', () => {
    const o = readWhole('"1","a\nb","c"');
    expect(fieldsOf(o)).toEqual([['1', 'a\nb', 'c']]);
    expect(o.counters).toMatchObject({ records: 1, lfRecords: 0, crlfRecords: 0 });
  });

  it('an empty input gives nothing', () => {
    expect(readWhole('').counters).toEqual({ records: 0, rows: 0, errors: 0, blankLines: 0, lfRecords: 0, crlfRecords: 0 });
  });

  it('skips and counts blank lines (LF and CRLF); they are not records', () => {
    const o = readWhole('\n"1","a","b"\n\n\r\n"2","c","d"\n\n');
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['2', 'c', 'd']]);
    expect(linesOf(o)).toEqual([3, 6]);
    expect(o.rows.map((r) => r.recordNo)).toEqual([1, 2]);
    expect(o.counters).toEqual({ records: 2, rows: 2, errors: 0, blankLines: 4, lfRecords: 2, crlfRecords: 0 });
    expect(o.nonStrict).toEqual({ lineNo: 2, reason: 'empty line' });
  });

  it('a wrong field count is an error with the line and raw text; the following rows are still read', () => {
    const o = readWhole('"1","a","b"\n"2","c"\n"3","d","e","f"\n"4","g","h"\n');
    expect(o.errors).toEqual([
      { lineNo: 3, recordNo: 2, message: 'expected 3 fields, found 2', raw: '"2","c"', rawHex: Buffer.from('"2","c"').toString('hex'), rawLength: 7 },
      { lineNo: 4, recordNo: 3, message: 'expected 3 fields, found 4', raw: '"3","d","e","f"', rawHex: Buffer.from('"3","d","e","f"').toString('hex'), rawLength: 15 },
    ]);
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['4', 'g', 'h']]);
    expect(o.rows.map((r) => [r.lineNo, r.recordNo])).toEqual([[2, 1], [5, 4]]);
    expect(o.counters).toMatchObject({ records: 4, rows: 2, errors: 2 });
    expect(o.nonStrict).toEqual({ lineNo: 3, reason: 'expected 3 fields, found 2' });
  });

  it('a wrong field count on a CRLF line: raw text without the CR', () => {
    const o = readWhole('"1","a"\r\n"2","b","c"\r\n', { eol: 'CRLF' });
    expect(o.errors.map((e) => [e.lineNo, e.raw, e.rawLength])).toEqual([[2, '"1","a"', 7]]);
    expect(linesOf(o)).toEqual([3]);
  });

  it('an unterminated quote near the end of the file: only its first line is an error, later lines are re-read', () => {
    const o = readWhole('"1","a","b"\n"2","abc,def\n4,g,h\n5,i,j\n');
    expect(o.errors).toEqual([{
      lineNo: 3, recordNo: 2, message: 'unterminated quoted field (reached the end of the file)',
      raw: '"2","abc,def', rawHex: Buffer.from('"2","abc,def').toString('hex'), rawLength: 12,
    }]);
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['4', 'g', 'h'], ['5', 'i', 'j']]);
    expect(linesOf(o)).toEqual([2, 4, 5]);
    expect(o.rows.map((r) => r.recordNo)).toEqual([1, 3, 4]);
  });

  it('an unterminated quote on the very last line (no newline)', () => {
    const o = readWhole('"1","a","b"\n"2","c');
    expect(o.errors.map((e) => [e.lineNo, e.message, e.raw])).toEqual([[3, 'unterminated quoted field (reached the end of the file)', '"2","c']]);
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b']]);
  });

  it('a stray quote whose record closes with the wrong count costs one line', () => {
    const o = readWhole('"1","a","b"\n"2","abc,def\n"3","g","h"\n"4","i","j"\n');
    expect(o.errors.map((e) => [e.lineNo, e.message, e.raw])).toEqual([
      [3, 'unterminated quoted field on this line (read on over 2 lines it has 4 fields, expected 3)', '"2","abc,def'],
    ]);
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['3', 'g', 'h'], ['4', 'i', 'j']]);
    expect(linesOf(o)).toEqual([2, 4, 5]);
  });

  it('a line longer than maxRecordBytes is an error; reading resumes after it', () => {
    const long = `"2","${'x'.repeat(30)}","c"`;
    const input = `"1","a","b"\n${long}\n"3","d","e"\n`;
    const o = readWhole(input, { maxRecordBytes: 20 });
    expect(o.errors).toEqual([{
      lineNo: 3, recordNo: 2, message: 'record longer than 20 bytes (maxRecordBytes)',
      raw: long, rawHex: Buffer.from(long).toString('hex'), rawLength: long.length,
    }]);
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['3', 'd', 'e']]);
    expect(linesOf(o)).toEqual([2, 4]);
    // Also as the last line without a newline.
    const last = readWhole(`"1","a","b"\n${long}`, { maxRecordBytes: 20 });
    expect(last.errors.map((e) => [e.lineNo, e.message, e.rawLength])).toEqual([[3, 'record longer than 20 bytes (maxRecordBytes)', long.length]]);
  });

  it('an over-long line arriving in several chunks with no newline yet: reported at once, then skipped to its newline', () => {
    const reader = new CsvRecordReader({ ...DEFAULTS, maxRecordBytes: 20 });
    const sink = new CollectingSink();
    reader.push(Buffer.from('"1","a","b"\n"2","xxxxxx'), sink);
    expect([reader.rows, reader.errors]).toEqual([1, 0]);
    reader.push(Buffer.from('xxxxxxxxxx'), sink); // 22 bytes of line 3 so far
    expect(reader.errors).toBe(1);
    expect(sink.errors[0]).toMatchObject({ lineNo: 3, recordNo: 2, message: 'record longer than 20 bytes (maxRecordBytes)' });
    expect(sink.errors[0]!.rawLength).toBeGreaterThan(20);
    expect(sink.errors[0]!.raw.startsWith('"2","xxxxxx')).toBe(true);
    for (let i = 0; i < 5; i++) reader.push(Buffer.from('y'.repeat(100)), sink); // still no newline
    reader.push(Buffer.from('zz","c"\n"3","d"'), sink);
    reader.push(Buffer.from(',"e"\n"4","f","g"'), sink);
    reader.end(sink);
    expect(reader.errors).toBe(1);
    expect(sink.rows.map((r) => [r.lineNo, r.recordNo, ...r.fields])).toEqual([[2, 1, '1', 'a', 'b'], [4, 3, '3', 'd', 'e'], [5, 4, '4', 'f', 'g']]);
    expect(reader.records).toBe(reader.rows + reader.errors);
  });

  it('an over-long line in any chunking: same rows, same error line and message', () => {
    const long = `"2","${'x'.repeat(50)}","c"`;
    const input = Buffer.from(`"1","a","b"\r\n${long}\r\n"3","d","e"\r\n"4","${'q'.repeat(25)}\n"5","f","g"\r\n`);
    const options = { maxRecordBytes: 20, eol: 'CRLF' as const };
    const whole = read([input], options);
    expect(whole.errors.map((e) => [e.lineNo, e.message])).toEqual([
      [3, 'record longer than 20 bytes (maxRecordBytes)'],
      [5, 'record longer than 20 bytes (maxRecordBytes)'],
    ]);
    expect(linesOf(whole)).toEqual([2, 4, 6]);
    // The raw bytes of an over-long line are only what had arrived when it went over the limit.
    const shape = (o: Outcome) => ({ rows: o.rows, errors: o.errors.map((e) => [e.lineNo, e.recordNo, e.message]), counters: o.counters, nonStrict: o.nonStrict });
    const rnd = seededRandom(7);
    for (const chunks of [bytewise(input), randomChunks(input, rnd), randomChunks(input, rnd, 30)]) {
      const o = read(chunks, options);
      expect(shape(o)).toEqual(shape(whole));
      for (const e of o.errors) {
        expect(e.rawLength).toBeGreaterThan(20);
        expect(e.raw.length).toBe(e.rawLength);
      }
    }
  });

  it('a multi-line record longer than maxRecordBytes: its first line is an error, the next lines are re-read', () => {
    const input = '"1","a","b"\n"2","ab\ncdefghijklmnopqrstuvw\n"3","c","d"\n';
    const o = readWhole(input, { maxRecordBytes: 20 });
    expect(o.errors.map((e) => [e.lineNo, e.message, e.raw])).toEqual([
      [3, 'unterminated quoted field (record longer than 20 bytes)', '"2","ab'],
      [4, 'record longer than 20 bytes (maxRecordBytes)', 'cdefghijklmnopqrstuvw'],
    ]);
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['3', 'c', 'd']]);
    expect(linesOf(o)).toEqual([2, 5]);
  });

  it('a record of exactly maxRecordBytes is accepted', () => {
    const line = '"1","a","b"'; // 11 bytes
    expect(fieldsOf(readWhole(`${line}\n`, { maxRecordBytes: 11 }))).toEqual([['1', 'a', 'b']]);
    expect(fieldsOf(readWhole(`${line}\r\n`, { maxRecordBytes: 11 }))).toEqual([['1', 'a', 'b']]);
    expect(fieldsOf(read(bytewise(Buffer.from(`${line}\n`)), { maxRecordBytes: 11 }))).toEqual([['1', 'a', 'b']]);
    expect(readWhole(`${line}\n`, { maxRecordBytes: 10 }).errors).toHaveLength(1);
  });

  // BUG: in push(), a line with no LF yet is measured with the CR of its CRLF included
  // (`buf.length - pos > maxRecordBytes`), while a complete line is measured without it
  // (`contentEnd - pos`). A CRLF record of exactly maxRecordBytes bytes whose chunk ends between CR and
  // LF is rejected, although the same bytes pushed whole are accepted.
  it('a CRLF record of exactly maxRecordBytes, chunk cut between CR and LF, is accepted (chunking independence)', () => {
    const input = Buffer.from('"1","a","b"\r\n"2","c","d"\r\n');
    const options = { maxRecordBytes: 11, eol: 'CRLF' as const };
    const whole = read([input], options);
    expect(fieldsOf(whole)).toEqual([['1', 'a', 'b'], ['2', 'c', 'd']]);
    expect(read([input.subarray(0, 12), input.subarray(12)], options)).toEqual(whole);
  });

  it('a CRLF multi-line record of exactly maxRecordBytes, chunk cut between CR and LF, is accepted', () => {
    const input = Buffer.from('"1","a\nb","c"\r\n"2","d","e"\r\n'); // record: 13 bytes
    const options = { maxRecordBytes: 13, eol: 'CRLF' as const };
    const whole = read([input], options);
    expect(fieldsOf(whole)).toEqual([['1', 'a\nb', 'c'], ['2', 'd', 'e']]);
    expect(read([input.subarray(0, 14), input.subarray(14)], options)).toEqual(whole);
  });

  it('a NUL byte or invalid UTF-8 is an error with checkEncoding; the other rows are kept', () => {
    const input = Buffer.concat([
      Buffer.from('"1","a","b"\n"2","a\0b","c"\n"3","caf'),
      Buffer.from([0xe9]),
      Buffer.from('","d"\n"4","café","e"\n'),
    ]);
    const o = readWhole(input);
    expect(o.errors.map((e) => [e.lineNo, e.recordNo, e.message, e.rawLength])).toEqual([
      [3, 2, 'NUL byte at byte 7 of the record', 13],
      [4, 3, 'invalid UTF-8 at byte 9 of the record', 14],
    ]);
    expect(o.errors[0]!.raw).toBe('"2","a\0b","c"');
    expect(Buffer.from(o.errors[1]!.rawHex, 'hex')).toEqual(Buffer.concat([Buffer.from('"3","caf'), Buffer.from([0xe9]), Buffer.from('","d"')]));
    expect(fieldsOf(o)).toEqual([['1', 'a', 'b'], ['4', 'café', 'e']]);
    expect(linesOf(o)).toEqual([2, 5]);
    expect(o.counters).toMatchObject({ records: 4, rows: 2, errors: 2 });

    const unchecked = readWhole(input, { checkEncoding: false });
    expect(unchecked.errors).toEqual([]);
    expect(unchecked.rows.map((r) => r.fields[1])).toEqual(['a', 'a\0b', 'caf\ufffd', 'café']);
  });

  it('an encoding error inside a multi-line record reports its first line', () => {
    const o = readWhole(Buffer.concat([Buffer.from('"1","a\n'), Buffer.from([0xff]), Buffer.from('","b"\n"2","c","d"\n')]));
    expect(o.errors.map((e) => [e.lineNo, e.message])).toEqual([[2, 'invalid UTF-8 at byte 8 of the record']]);
    expect(linesOf(o)).toEqual([4]);
  });

  it('a multi-byte UTF-8 character split across chunks is fine', () => {
    const o = expectChunkingIndependent('"1","café €𝄞","x"\n');
    expect(fieldsOf(o)).toEqual([['1', 'café €𝄞', 'x']]);
    expect(o.errors).toEqual([]);
  });

  // The no-escape reading is tried on the first line before a record may continue on the next line:
  // a value ending in a bare quote (the feed's quirk) wins over an RFC 4180 `""` right before an
  // embedded line break. Documents the chosen reading of an ambiguous input.
  it('reads a valid multi-line RFC 4180 record first, before the no-escape reading of its first line', () => {
    const o = readWhole('"1","a","q""\nr"\n"2","b","c"\n');
    expect(o.rows.map((r) => [r.lineNo, ...r.fields])).toEqual([[2, '1', 'a', 'q"\nr'], [4, '2', 'b', 'c']]);
    expect(o.errors).toEqual([]);
    const o2 = readWhole('""",  \n,","Z"\n', { columns: 2 });
    expect(o2.rows.map((r) => r.fields)).toEqual([['",  \n,', 'Z']]);
    expect(o2.errors).toEqual([]);
  });

  it('falls back to the no-escape reading when RFC 4180 finds no record (a value ending in a bare quote)', () => {
    const o = readWhole('"1","12"","y"\n"2","b","c"\n');
    expect(o.rows.map((r) => [r.lineNo, ...r.fields])).toEqual([[2, '1', '12"', 'y'], [3, '2', 'b', 'c']]);
    expect(o.errors).toEqual([]);
  });

  it('chunking independence on a tricky input (whole, byte by byte, random, every two-piece cut)', () => {
    const input = Buffer.concat([
      Buffer.from(
        '\r\n"1","125" SLEEPER CAB","x"\r\n"2","12"","y"\n"3","a ""b""","multi\r\nline, value"\n\n' +
        '4,plain,"q"\n"5","c"\n"6","d","e","f"\r\n"7","x\n\ny","z"\n"8","abc,def\n"9","g","h"\n' +
        '"10","\0","n"\n"11","caf'),
      Buffer.from([0xe9]),
      Buffer.from('","d"\n"12","€","k"\n"13","open,\n14,t,u\n15,v,w'),
    ]);
    const o = expectChunkingIndependent(input, { eol: 'CRLF' });
    expect(o.rows.map((r) => [r.lineNo, ...r.fields])).toEqual([
      [3, '1', '125" SLEEPER CAB', 'x'],
      [4, '2', '12"', 'y'],
      [5, '3', 'a "b"', 'multi\r\nline, value'],
      [8, '4', 'plain', 'q'],
      [11, '7', 'x\n\ny', 'z'],
      [15, '9', 'g', 'h'],
      [18, '12', '€', 'k'],
      [20, '14', 't', 'u'],
      [21, '15', 'v', 'w'],
    ]);
    expect(o.errors.map((e) => [e.lineNo, e.message])).toEqual([
      [9, 'expected 3 fields, found 2'],
      [10, 'expected 3 fields, found 4'],
      [14, 'unterminated quoted field on this line (read on over 2 lines it has 4 fields, expected 3)'],
      [16, 'NUL byte at byte 7 of the record'],
      [17, 'invalid UTF-8 at byte 10 of the record'],
      [19, 'unterminated quoted field (reached the end of the file)'],
    ]);
    // lfRecords/crlfRecords also count the two records rejected for their encoding (lines 16, 17).
    expect(o.counters).toEqual({ records: 15, rows: 9, errors: 6, blankLines: 2, lfRecords: 9, crlfRecords: 1 });
    expect(o.nonStrict).toEqual({ lineNo: 2, reason: 'empty line' });
  });

  describe('property: generated CSVs', () => {
    const ALPHABET = ['a', 'b', 'Z', '0', '9', ' ', ',', '"', '\n', '\r\n', '\r', 'é', '€'];

    function randomValue(rnd: () => number): string {
      const n = Math.floor(rnd() * 6);
      let v = '';
      for (let i = 0; i < n; i++) v += ALPHABET[Math.floor(rnd() * ALPHABET.length)]!;
      return v;
    }

    it('well-formed RFC 4180 input: exact values, line numbers, counters; chunking independent', () => {
      const rnd = seededRandom(20251017);
      for (let c = 0; c < 150; c++) {
        const columns = 1 + Math.floor(rnd() * 4);
        const records: string[][] = [];
        const expectedLines: number[] = [];
        let text = '';
        let line = 2;
        let lf = 0;
        let crlf = 0;
        let blanks = 0;
        const nRecords = Math.floor(rnd() * 6);
        for (let r = 0; r < nRecords; r++) {
          while (rnd() < 0.15) {
            text += rnd() < 0.5 ? '\n' : '\r\n';
            blanks++;
            line++;
          }
          let values = Array.from({ length: columns }, () => randomValue(rnd));
          // A record spanning lines holds no `"`: otherwise its first line may fit the no-escape reading
          // and be taken for a record ending in a bare quote (the documented ambiguity above).
          if (values.some((v) => v.includes('\n'))) values = values.map((v) => v.replaceAll('"', ''));
          // A single empty field would be a blank line: quote it.
          const quoteAll = rnd() < 0.7 || (columns === 1 && values[0] === '');
          const encoded = values.map((v) => (quoteAll || /[",\r\n]/.test(v) || v === '' && rnd() < 0.5 ? `"${v.replaceAll('"', '""')}"` : v));
          records.push(values);
          expectedLines.push(line);
          text += encoded.join(',');
          line += values.join('').split('\n').length - 1;
          const last = r === nRecords - 1;
          if (last && rnd() < 0.3) break; // no final newline
          if (rnd() < 0.5) { text += '\n'; lf++; } else { text += '\r\n'; crlf++; }
          line++;
        }
        const options = { columns, eol: 'LF' as const };
        const buf = Buffer.from(text);
        const whole = read([buf], options);
        expect(whole.errors, JSON.stringify(text)).toEqual([]);
        expect(fieldsOf(whole), JSON.stringify(text)).toEqual(records);
        expect(linesOf(whole), JSON.stringify(text)).toEqual(expectedLines);
        expect(whole.counters).toEqual({ records: records.length, rows: records.length, errors: 0, blankLines: blanks, lfRecords: lf, crlfRecords: crlf });
        // RFC 4180 with LF only and no blank line: COPY reads it the same way (fast path allowed).
        if (blanks === 0 && crlf === 0) expect(whole.nonStrict, JSON.stringify(text)).toBeUndefined();
        else expect(whole.nonStrict, JSON.stringify(text)).toBeDefined();
        expect(read(bytewise(buf), options), JSON.stringify(text)).toEqual(whole);
        expect(read(randomChunks(buf, rnd), options), JSON.stringify(text)).toEqual(whole);
      }
    });

    const FRAGMENTS = [
      '"1"', '""', '"a,b"', '"x""y"', '"125" SLEEPER CAB"', '"12""', 'plain', '', 'a"b', '"p\nq"', '"r\r\ns"',
      '"open', 'c"', '"\0"', '"€"', '\xe9', '"\xff"', ' ',
    ];

    it('messy input: whole, byte by byte and random chunks agree; invariants hold', () => {
      const rnd = seededRandom(42);
      for (let c = 0; c < 300; c++) {
        const parts: Buffer[] = [];
        const nLines = Math.floor(rnd() * 7);
        for (let l = 0; l < nLines; l++) {
          const nFields = rnd() < 0.8 ? 3 : 1 + Math.floor(rnd() * 5);
          const fields: Buffer[] = [];
          for (let f = 0; f < nFields; f++) {
            const frag = FRAGMENTS[Math.floor(rnd() * FRAGMENTS.length)]!;
            fields.push(Buffer.from(frag, /[\xe9\xff]/.test(frag) ? 'latin1' : 'utf8'));
          }
          parts.push(Buffer.concat(fields.flatMap((f, i) => (i === 0 ? [f] : [Buffer.from(','), f]))));
          const eol = rnd();
          if (l < nLines - 1 || eol < 0.7) parts.push(Buffer.from(eol < 0.35 ? '\r\n' : eol < 0.4 ? '\n\n' : '\n'));
        }
        const buf = Buffer.concat(parts);
        const options = { columns: 3, checkEncoding: rnd() < 0.7, eol: rnd() < 0.5 ? 'LF' as const : 'CRLF' as const };
        const whole = read([buf], options);
        const label = buf.toString('latin1');
        expect(read(bytewise(buf), options), label).toEqual(whole);
        for (let k = 0; k < 3; k++) expect(read(randomChunks(buf, rnd, 1 + Math.floor(rnd() * 20)), options), label).toEqual(whole);
        // Every physical line is accounted for: records' lines, errors' lines and blank lines are distinct.
        const starts = [...whole.rows.map((r) => r.lineNo), ...whole.errors.map((e) => e.lineNo)];
        expect(new Set(starts).size).toBe(starts.length);
        for (const row of whole.rows) expect(row.fields).toHaveLength(3);
      }
    });
  });
});
