import type pg from 'pg';
import { ConfigError } from '../config.js';
import { sqlState } from './errors.js';

/**
 * The two group roles of docs/security.md, NOLOGIN: login roles are made members of them.
 * - the writer: what the daemon, ingest and replay need (read and write the tables, temp tables,
 *   sequences); it owns nothing and may run no DDL.
 * - the reader: the application's view, the core tables, public.lot_events, public.vin_history and the
 *   audit views; nothing in raw or staging.
 */
export const WRITER_ROLE = 'vinops_etl_rw';
export const READER_ROLE = 'vinops_app_ro';
export const GROUP_ROLES = [WRITER_ROLE, READER_ROLE] as const;

/** The schemas vinops-etl creates (public holds the core tables and the migrations ledger). */
const OWN_SCHEMAS = ['raw', 'staging', 'audit'] as const;
/** Readable by the writer (to know the schema version) but not writable: only the owner migrates. */
const LEDGER = 'vinops_migrations';

/** Creates the group roles that do not exist yet (needs CREATEROLE). Returns the ones it created. */
export async function createGroupRoles(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [[...GROUP_ROLES]]);
  const have = new Set(rows.map((r) => r.rolname));
  const created: string[] = [];
  for (const role of GROUP_ROLES) {
    if (have.has(role)) continue;
    // NOINHERIT would not matter for a NOLOGIN role; what matters is that nobody logs in as the group.
    await client.query(`CREATE ROLE ${role} NOLOGIN`);
    created.push(role);
  }
  return created;
}

/** Which of the group roles exist on the server. */
export async function existingGroupRoles(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname', [[...GROUP_ROLES]]);
  return rows.map((r) => r.rolname);
}

interface Relation {
  readonly schema: string;
  readonly name: string;
  /** pg_class.relkind: r table, p partitioned table, v view, m materialized view, S sequence. */
  readonly kind: string;
}

/**
 * The GRANT statements that give the group roles what they need on the vinops-etl objects as they
 * are now: every relation in raw, staging and audit, and the relations in public owned by the owner
 * of the raw schema (the role that ran the migrations; another application's tables in public are
 * left alone). Run after every migration (migrate) and by `vinops-etl roles`, so a later migration's
 * table is reachable by the right role. Idempotent: GRANT of a privilege held is a no-op.
 */
export async function grantStatements(client: pg.ClientBase, roles: readonly string[]): Promise<string[]> {
  const writer = roles.includes(WRITER_ROLE);
  const reader = roles.includes(READER_ROLE);
  if (!writer && !reader) return [];
  const { rows: [server] } = await client.query<{ db: string }>('SELECT current_database() AS db');
  const { rows: relations } = await client.query<Relation>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
        AND NOT c.relispartition
        AND (n.nspname = ANY($1)
             OR (n.nspname = 'public' AND c.relowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'raw')))
      ORDER BY 1, 2`, [[...OWN_SCHEMAS]]);
  // The SECURITY DEFINER functions (migrations/0013: ANALYZE as the owner) are the writer's alone.
  const { rows: definers } = await client.query<{ signature: string }>(
    `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND n.nspname = ANY($1) AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'raw')
      ORDER BY 1`, [[...OWN_SCHEMAS, 'public']]);
  const q = (r: Relation): string => `${ident(r.schema)}.${ident(r.name)}`;
  const out: string[] = [];
  const db = ident(server!.db);
  if (writer) {
    out.push(`GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${WRITER_ROLE}`);
    out.push(`GRANT USAGE ON SCHEMA ${[...OWN_SCHEMAS, 'public'].join(', ')} TO ${WRITER_ROLE}`);
    for (const r of relations) {
      if (r.kind === 'S') out.push(`GRANT USAGE, SELECT, UPDATE ON SEQUENCE ${q(r)} TO ${WRITER_ROLE}`);
      else if (r.schema === 'public' && r.name === LEDGER) out.push(`GRANT SELECT ON TABLE ${q(r)} TO ${WRITER_ROLE}`);
      else if (r.kind === 'v') out.push(`GRANT SELECT ON TABLE ${q(r)} TO ${WRITER_ROLE}`);
      else out.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ${q(r)} TO ${WRITER_ROLE}`);
    }
    for (const f of definers) out.push(`GRANT EXECUTE ON FUNCTION ${f.signature} TO ${WRITER_ROLE}`);
  }
  if (reader) {
    out.push(`GRANT CONNECT ON DATABASE ${db} TO ${READER_ROLE}`);
    out.push(`GRANT USAGE ON SCHEMA public, audit TO ${READER_ROLE}`);
    for (const r of relations) {
      const readable = r.kind !== 'S' && ((r.schema === 'public' && r.name !== LEDGER) || (r.schema === 'audit' && r.kind === 'v'));
      if (readable) out.push(`GRANT SELECT ON TABLE ${q(r)} TO ${READER_ROLE}`);
    }
  }
  return out;
}

/** Applies grantStatements for the group roles that exist. Returns the roles granted to. */
export async function grantGroupRoles(client: pg.ClientBase): Promise<string[]> {
  const roles = await existingGroupRoles(client);
  for (const sql of await grantStatements(client, roles)) await client.query(sql);
  return roles;
}

/** A quoted identifier when it needs quoting (the names here are the migrations' own). */
function ident(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

export interface RolesResult {
  /** Group roles this run created; the others existed. */
  readonly created: readonly string[];
  readonly existing: readonly string[];
  /** GRANT statements run; 0 when the schema is not migrated yet (migrate grants then). */
  readonly grants: number;
  readonly schemaMigrated: boolean;
}

/**
 * `vinops-etl roles`: the group roles, created when missing (CREATEROLE), and granted what they need
 * on the objects that exist. Idempotent. The grants must come from the schema's owner: a GRANT by
 * anyone else grants nothing (the server only warns), so that is refused here, with the fix.
 */
export async function setUpRoles(client: pg.ClientBase): Promise<RolesResult> {
  const before = await existingGroupRoles(client);
  const { rows: [me] } = await client.query<{ user: string; migrated: boolean; owner: boolean; owner_name: string | null }>(
    `SELECT current_user AS user, n.oid IS NOT NULL AS migrated, coalesce(pg_has_role(current_user, n.nspowner, 'USAGE'), false) AS owner,
            pg_get_userbyid(n.nspowner) AS owner_name
       FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = 'raw'`);
  if (me!.migrated && !me!.owner) {
    throw new ConfigError(`vinops-etl roles: the database user "${me!.user}" does not own the vinops-etl schema (its owner is "${me!.owner_name}"): ` +
      'run it as the role that runs `vinops-etl migrate`');
  }
  const created = await createGroupRoles(client).catch((err: unknown) => {
    if (sqlState(err) !== '42501') throw err;
    throw new ConfigError(`vinops-etl roles: the database user "${me!.user}" may not create roles (it needs CREATEROLE): ` +
      `have an administrator create ${GROUP_ROLES.join(' and ')} with the SQL in docs/security.md, then run this again`, { cause: err });
  });
  let grants = 0;
  if (me!.migrated) {
    const statements = await grantStatements(client, GROUP_ROLES);
    for (const sql of statements) await client.query(sql);
    grants = statements.length;
  }
  return { created, existing: before, grants, schemaMigrated: me!.migrated };
}
