import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type pg from 'pg';
import { buildLayout } from '../feed/layout.js';

/**
 * A stored file's original bytes, written from the database alone (docs/storage.md, *Byte-exact
 * export*): the header's bytes, then each record rendered canonically from its stored values (every
 * field quoted, quotes doubled, the header's line ending) unless the file kept its exact bytes
 * (raw.file_residuals), then the trailing blank lines. The sha256 of what was written is compared
 * with the registry's: a mismatch is an error, never a silent near-copy.
 */

export interface ExportResult {
  readonly fileId: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly records: number;
  readonly residuals: number;
  readonly seconds: number;
}

/** The file cannot be written back exactly: not stored, flagged at ingest, or the bytes do not match. */
export class ExportError extends Error {
  override name = 'ExportError';
}

/** Records per query: a few MB of values at a time, so memory stays flat whatever the file's size. */
const BATCH_RECORDS = 10_000;
/** Bytes gathered before a write. */
const WRITE_BYTES = 1 << 20;

interface Registry {
  sha256: string;
  bytes: string;
  names: string[];
  has_bom: boolean;
  line_ending: string;
  header_bytes: Buffer | null;
  trailer_bytes: Buffer | null;
  export_exact: boolean | null;
  export_note: string | null;
  records: number | null;
}

/** Writes the file's bytes to out (not ended here); throws ExportError when they are not the original's. */
export async function exportFile(client: pg.ClientBase, fileId: string, out: Writable, options: { signal?: AbortSignal } = {}): Promise<ExportResult> {
  const t0 = performance.now();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(fileId)) throw new ExportError(`not a file_id: ${JSON.stringify(fileId)} (vinops-etl status lists them)`);
  const { rows: [f] } = await client.query<Registry>(
    `SELECT f.sha256, f.bytes, ARRAY(SELECT jsonb_array_elements_text(f.headers_jsonb)) AS names, f.has_bom, f.line_ending,
            f.header_bytes, f.trailer_bytes, f.export_exact, f.export_note, cardinality(c.payload_hashes) AS records
       FROM raw.csv_files f LEFT JOIN raw.file_contents c USING (file_id) WHERE f.file_id = $1`, [fileId]);
  if (f === undefined) throw new ExportError(`no stored file ${fileId}`);
  if (f.records === null) throw new ExportError(`file ${fileId} has no stored rows (raw.file_contents)`);
  if (f.export_exact === false) throw new ExportError(`file ${fileId} cannot be written back exactly: ${f.export_note ?? 'flagged at ingest'}`);

  // Files stored before migration 0014 kept no header bytes: the canonical header, checked by the hash.
  const eol = f.header_bytes !== null ? eolOf(f.header_bytes) : f.line_ending === 'CRLF' ? '\r\n' : '\n';
  const header = f.header_bytes ?? Buffer.concat([f.has_bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(renderRecord(f.names, eol))]);
  const idIndex = buildLayout(f.names, { hasBom: f.has_bom, eol: 'LF', dataOffset: 0 }).idIndex;

  const hash = createHash('sha256');
  let written = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    const chunk = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    hash.update(chunk);
    written += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain', options.signal ? { signal: options.signal } : {});
  };
  const push = async (b: Buffer): Promise<void> => {
    pending.push(b);
    pendingBytes += b.length;
    if (pendingBytes >= WRITE_BYTES) await flush();
  };

  await push(header);
  let residuals = 0;
  for (let from = 1; from <= f.records; from += BATCH_RECORDS) {
    options.signal?.throwIfAborted();
    const to = Math.min(f.records, from + BATCH_RECORDS - 1);
    const { rows } = await client.query<{ k: number; id: string | null; vals_text: string | null; vals: string[] | null; residual: Buffer | null; error_bytes: Buffer | null }>(
      `SELECT u.k::int AS k, u.id, p.vals_text, p.vals, r.bytes AS residual,
              CASE WHEN u.h IS NULL AND r.bytes IS NULL THEN
                (SELECT e.raw_bytes FROM audit.parse_errors e
                  WHERE e.file_id = c.file_id AND e.record_no = $2 + u.k - 1 AND e.raw_length = octet_length(e.raw_bytes) LIMIT 1) END AS error_bytes
         FROM raw.file_contents c
        CROSS JOIN LATERAL unnest(c.payload_hashes[$2:$3], c.id_values[$2:$3]) WITH ORDINALITY AS u(h, id, k)
         LEFT JOIN raw.payloads p ON p.hash = u.h
         LEFT JOIN raw.file_residuals r ON r.file_id = c.file_id AND r.record_no = $2 + u.k - 1
        WHERE c.file_id = $1
        ORDER BY u.k`, [fileId, from, to]);
    if (rows.length !== to - from + 1) throw new ExportError(`file ${fileId}: records ${from}-${to} read back as ${rows.length}`);
    for (const r of rows) {
      if (r.residual !== null) {
        residuals++;
        await push(r.residual);
      } else if (r.vals_text !== null || r.vals !== null) {
        const values = r.vals ?? r.vals_text!.split('\x1f');
        if (idIndex !== -1) values.splice(idIndex, 0, r.id ?? '');
        await push(Buffer.from(renderRecord(values, eol)));
      } else if (r.error_bytes !== null) {
        // A parse error of a file stored before 0014: its bytes, with the header's line ending.
        await push(Buffer.concat([r.error_bytes, Buffer.from(eol)]));
      } else {
        throw new ExportError(`file ${fileId}: record ${from + r.k - 1} is a parse error whose bytes are not kept`);
      }
    }
  }
  if (f.trailer_bytes !== null) await push(f.trailer_bytes);
  await flush();
  const sha256 = hash.digest('hex');
  if (sha256 !== f.sha256 || written !== Number(f.bytes)) {
    throw new ExportError(`file ${fileId}: the bytes written (${written}, sha256 ${sha256}) are not the original's (${f.bytes}, ${f.sha256})` +
      (f.export_exact === null ? ': it was stored before byte-exact export (migration 0014); ingest the original again to keep what is missing' : ''));
  }
  return { fileId, bytes: written, sha256, records: f.records, residuals, seconds: (performance.now() - t0) / 1000 };
}

/** A record in the canonical form: every field quoted, quotes doubled, then the line ending. */
function renderRecord(values: readonly string[], eol: string): string {
  let s = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    s += (i === 0 ? '"' : ',"') + (v.includes('"') ? v.replaceAll('"', '""') : v) + '"';
  }
  return s + eol;
}

/** The header's line ending (the canonical one of its records). */
function eolOf(header: Buffer): string {
  return header.length >= 2 && header[header.length - 2] === 13 && header[header.length - 1] === 10 ? '\r\n' : '\n';
}
