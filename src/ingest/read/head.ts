import { isUtf8 } from 'node:buffer';
import { buildLayout, RejectedFileError, type FileLayout } from '../../feed/layout.js';
import { decodeField, parseFields, type FieldKind } from './csvRecordReader.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** A header longer than this is not a feed header. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * Refuses input that is not a CSV at all before anything is written: the empty file, binary junk,
 * the HTML block page a blocked download returns.
 */
export function sniffNonCsv(head: Buffer, fileBytes: number): string | undefined {
  if (fileBytes === 0) return 'empty file (0 bytes)';
  // A NUL in the header line, or many in the first 8 KiB, is binary data; a NUL inside one row is that
  // row's parse error.
  const probe = head.subarray(0, 8192);
  const firstNul = probe.indexOf(0);
  const firstNewline = probe.indexOf(10);
  let nuls = 0;
  for (let i = firstNul; i !== -1; i = probe.indexOf(0, i + 1)) nuls++;
  if (firstNul !== -1 && ((firstNewline === -1 || firstNul < firstNewline) || nuls > probe.length / 100)) {
    return `binary data, not a CSV (NUL byte at offset ${firstNul})`;
  }
  const text = probe.toString('utf8').replace(/^\uFEFF/, '');
  if (/^\s*</.test(text) || /<(html|!doctype|head|body)\b/i.test(text.slice(0, 2048))) {
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 120);
    return `an HTML page, not a CSV (a blocked download?): "${snippet}"`;
  }
  return undefined;
}

/**
 * Parses the header from the first bytes of the file. Returns undefined when `head` does not hold
 * the whole header line yet and more bytes exist.
 */
export function parseHeader(head: Buffer, final: boolean): FileLayout | undefined {
  const hasBom = head.subarray(0, 3).equals(BOM);
  const start = hasBom ? 3 : 0;
  const nl = head.indexOf(10, start);
  if (nl === -1 && !final) {
    if (head.length > MAX_HEADER_BYTES) throw new RejectedFileError(`no header line in the first ${MAX_HEADER_BYTES} bytes: not a CSV`);
    return undefined;
  }
  const lineEnd = nl === -1 ? head.length : nl;
  const contentEnd = lineEnd > start && head[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd;
  const eol = nl === -1 ? 'none' : contentEnd < lineEnd ? 'CRLF' : 'LF';
  if (!isUtf8(head.subarray(start, contentEnd))) throw new RejectedFileError('the header line is not UTF-8 text: not a feed CSV');
  const spans: number[] = [];
  const result = { strict: true };
  let n = parseFields(head, start, contentEnd, true, spans, result);
  if (n < 0) n = parseFields(head, start, contentEnd, false, spans, result);
  if (n < 0) throw new RejectedFileError('the header line has an unterminated quoted field: not a feed CSV');
  const names: string[] = [];
  for (let i = 0; i < spans.length; i += 3) names.push(decodeField(head, spans[i]!, spans[i + 1]!, spans[i + 2]! as FieldKind));
  return buildLayout(names, { hasBom, eol, dataOffset: nl === -1 ? head.length : nl + 1 });
}

