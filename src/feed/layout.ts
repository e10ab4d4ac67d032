import { createHash } from 'node:crypto';
import { COLUMN_ROLES, REQUIRED_ROLES, type ColumnRole } from './columns.js';
import { extraColumns, headerVariant, nameKey } from './headers.js';

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
