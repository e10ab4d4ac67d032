import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { decodeField, parseFields, type FieldKind } from './csvRecordReader.js';
import { COLUMN_ROLES, REQUIRED_ROLES, extraColumns, headerVariant, nameKey, type ColumnRole } from './feedColumns.js';

/** The header line, and everything derived from it that the load and the typing need. */
export interface FileLayout {
  /** Header names verbatim, in file order (raw.csv_files.headers_jsonb). */
  readonly names: readonly string[];
  readonly columns: number;
  /** 0-based index of the Id column, or -1. */
  readonly idIndex: number;
  /** JSON keys of the payload values: names without Id, made unique (raw.csv_files.payload_keys). */
  readonly payloadKeys: readonly string[];
  /** JSON key of the Id value (its header name), or null. */
  readonly idKey: string | null;
  /** 0-based file column of each role found. */
  readonly roleIndex: Readonly<Partial<Record<ColumnRole, number>>>;
  readonly variant: string | null;
  /** Roles typing reads that this header lacks (their header names). */
  readonly missingColumns: readonly string[];
  readonly extraColumns: readonly string[];
  /** md5 of the payload keys: part of every payload's content address. */
  readonly layoutHash: string;
  readonly hasBom: boolean;
  readonly eol: 'LF' | 'CRLF' | 'none';
  /** Byte offset where the first data record starts. */
  readonly dataOffset: number;
}

export class RejectedFileError extends Error {
  override name = 'RejectedFileError';
}

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

/** Everything derived from the header names. Throws RejectedFileError without Lot number or VIN. */
export function buildLayout(names: readonly string[], where: { hasBom: boolean; eol: 'LF' | 'CRLF' | 'none'; dataOffset: number }): FileLayout {
  const byKey = new Map<string, number>();
  names.forEach((n, i) => { if (!byKey.has(nameKey(n))) byKey.set(nameKey(n), i); });
  const missingRequired = REQUIRED_ROLES.filter((r) => !byKey.has(nameKey(COLUMN_ROLES[r])));
  if (missingRequired.length > 0) {
    const list = missingRequired.map((r) => `"${COLUMN_ROLES[r]}"`).join(' and ');
    const seen = names.slice(0, 6).map((n) => JSON.stringify(n)).join(', ');
    throw new RejectedFileError(`header has no ${list} column (${names.length} columns: ${seen}${names.length > 6 ? ', …' : ''})`);
  }
  const idIndex = byKey.get(nameKey(COLUMN_ROLES.id)) ?? -1;
  const idKey = idIndex === -1 ? null : names[idIndex]!;
  // Payload keys: header order without Id; a repeated name gets " (2)", " (3)" so no value is lost.
  const used = new Set<string>(idKey === null ? [] : [idKey]);
  const payloadKeys: string[] = [];
  names.forEach((name, i) => {
    if (i === idIndex) return;
    let key = name;
    for (let k = 2; used.has(key); k++) key = `${name} (${k})`;
    used.add(key);
    payloadKeys.push(key);
  });
  const roleIndex: Partial<Record<ColumnRole, number>> = {};
  const missingColumns: string[] = [];
  for (const [role, header] of Object.entries(COLUMN_ROLES) as [ColumnRole, string][]) {
    if (role === 'id') continue;
    const index = byKey.get(nameKey(header));
    if (index === undefined) missingColumns.push(header);
    else roleIndex[role] = index;
  }
  return Object.freeze({
    names: Object.freeze([...names]),
    columns: names.length,
    idIndex,
    payloadKeys: Object.freeze(payloadKeys),
    idKey,
    roleIndex: Object.freeze(roleIndex),
    variant: headerVariant(names) ?? null,
    missingColumns: Object.freeze(missingColumns),
    extraColumns: Object.freeze(extraColumns(names)),
    layoutHash: createHash('md5').update(JSON.stringify(payloadKeys)).digest('hex'),
    hasBom: where.hasBom,
    eol: where.eol,
    dataOffset: where.dataOffset,
  });
}

/** 1-based position in the payload values (Id left out) of a 0-based file column. */
export function payloadPosition(layout: Pick<FileLayout, 'idIndex'>, fileIndex: number): number {
  return layout.idIndex !== -1 && fileIndex > layout.idIndex ? fileIndex : fileIndex + 1;
}
