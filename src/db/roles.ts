import pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import { sqlState } from './errors.js';

const { escapeIdentifier: ident } = pg;

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
  /** Whether the connected role may grant on it (a member of its owner); others are skipped. */
  readonly mine: boolean;
  /** Privileges the writer / reader hold on it now, e.g. ['SELECT', 'INSERT']. */
  readonly w: string[];
  readonly r: string[];
}

const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
const SEQUENCE_PRIVILEGES = ['USAGE', 'SELECT', 'UPDATE'] as const;

/** SQL: the privileges of `privs` that `role` holds on relation c (an empty array for a role that does not exist). */
function held(role: string | undefined): string {
  if (role === undefined) return `'{}'::text[]`;
  const check = (fn: string, privs: readonly string[]): string => `ARRAY(SELECT p FROM unnest(ARRAY[${privs.map((p) => `'${p}'`).join(', ')}]) p WHERE ${fn}('${role}', c.oid, p))`;
  return `CASE WHEN c.relkind = 'S' THEN ${check('has_sequence_privilege', SEQUENCE_PRIVILEGES)} ELSE ${check('has_table_privilege', TABLE_PRIVILEGES)} END`;
}

/**
 * The GRANT statements that give the group roles what they lack on the vinops-etl objects as they
 * are now: every relation in raw, staging and audit, and the relations in public owned by the owner
 * of the raw schema (the role that ran the migrations; another application's tables in public are
 * left alone). Only missing privileges, and only on objects the connected role may grant on, so it
 * is cheap to run at every migrate (after a failed run it gives what is still missing).
 */
export async function grantStatements(client: pg.ClientBase, roles: readonly string[]): Promise<string[]> {
  const writer = roles.includes(WRITER_ROLE) ? WRITER_ROLE : undefined;
  const reader = roles.includes(READER_ROLE) ? READER_ROLE : undefined;
  if (writer === undefined && reader === undefined) return [];
  const { rows: [top] } = await client.query<{ db: string; w_connect: boolean; w_temp: boolean; r_connect: boolean; w_schemas: string[]; r_schemas: string[]; owner: boolean }>(
    `SELECT current_database() AS db,
            ${writer ? `has_database_privilege('${writer}', current_database(), 'CONNECT')` : 'true'} AS w_connect,
            ${writer ? `has_database_privilege('${writer}', current_database(), 'TEMPORARY')` : 'true'} AS w_temp,
            ${reader ? `has_database_privilege('${reader}', current_database(), 'CONNECT')` : 'true'} AS r_connect,
            ARRAY(SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1) ${writer ? `AND NOT has_schema_privilege('${writer}', oid, 'USAGE')` : 'AND false'}) AS w_schemas,
            ARRAY(SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($2) ${reader ? `AND NOT has_schema_privilege('${reader}', oid, 'USAGE')` : 'AND false'}) AS r_schemas,
            coalesce((SELECT pg_has_role(current_user, nspowner, 'USAGE') FROM pg_namespace WHERE nspname = 'raw'), false) AS owner`,
    [[...OWN_SCHEMAS, 'public'], ['public', 'audit']]);
  const { rows: relations } = await client.query<Relation>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, pg_has_role(current_user, c.relowner, 'USAGE') AS mine,
            ${held(writer)} AS w, ${held(reader)} AS r
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
        AND NOT c.relispartition
        AND (n.nspname = ANY($1)
             OR (n.nspname = 'public' AND c.relowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'raw')))
      ORDER BY 1, 2`, [[...OWN_SCHEMAS]]);
  // The SECURITY DEFINER functions (migrations/0013: ANALYZE as the owner) are the writer's alone.
  const { rows: definers } = writer === undefined ? { rows: [] } : await client.query<{ signature: string }>(
    `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND n.nspname = ANY($1) AND pg_has_role(current_user, p.proowner, 'USAGE')
        AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'raw')
        AND NOT has_function_privilege('${writer}', p.oid, 'EXECUTE')
      ORDER BY 1`, [[...OWN_SCHEMAS, 'public']]);
  const q = (r: Relation): string => `${ident(r.schema)}.${ident(r.name)}`;
  const missing = (want: readonly string[], have: readonly string[]): string[] => want.filter((p) => !have.includes(p));
  const out: string[] = [];
  const db = ident(top!.db);
  const grant = (privs: readonly string[], on: string, role: string): void => { if (privs.length > 0) out.push(`GRANT ${privs.join(', ')} ON ${on} TO ${role}`); };
  if (writer !== undefined) {
    if (top!.owner) grant([...(top!.w_connect ? [] : ['CONNECT']), ...(top!.w_temp ? [] : ['TEMPORARY'])], `DATABASE ${db}`, writer);
    if (top!.owner && top!.w_schemas.length > 0) out.push(`GRANT USAGE ON SCHEMA ${top!.w_schemas.map(ident).join(', ')} TO ${writer}`);
    for (const r of relations.filter((x) => x.mine)) {
      const want = r.kind === 'S' ? SEQUENCE_PRIVILEGES : (r.schema === 'public' && r.name === LEDGER) || r.kind === 'v' ? ['SELECT'] : TABLE_PRIVILEGES;
      grant(missing(want, r.w), `${r.kind === 'S' ? 'SEQUENCE' : 'TABLE'} ${q(r)}`, writer);
    }
    for (const f of definers) out.push(`GRANT EXECUTE ON FUNCTION ${f.signature} TO ${writer}`);
  }
  if (reader !== undefined) {
    if (top!.owner && !top!.r_connect) out.push(`GRANT CONNECT ON DATABASE ${db} TO ${reader}`);
    if (top!.owner && top!.r_schemas.length > 0) out.push(`GRANT USAGE ON SCHEMA ${top!.r_schemas.map(ident).join(', ')} TO ${reader}`);
    for (const r of relations.filter((x) => x.mine)) {
      const readable = r.kind !== 'S' && ((r.schema === 'public' && r.name !== LEDGER) || (r.schema === 'audit' && r.kind === 'v'));
      if (readable) grant(missing(['SELECT'], r.r), `TABLE ${q(r)}`, reader);
    }
  }
  return out;
}

/** Gives the group roles that exist what they lack; logs the relations it may not grant on. Returns the statements run. */
export async function grantGroupRoles(client: pg.ClientBase, log?: Logger): Promise<number> {
  const roles = await existingGroupRoles(client);
  if (roles.length === 0) return 0;
  const statements = await grantStatements(client, roles);
  for (const sql of statements) await client.query(sql);
  if (log !== undefined) {
    const { rows } = await client.query<{ rel: string; owner: string }>(
      `SELECT c.oid::regclass::text AS rel, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition AND NOT pg_has_role(current_user, c.relowner, 'USAGE')`, [[...OWN_SCHEMAS]]);
    if (rows.length > 0) log.warn({ relations: rows.map((r) => `${r.rel} (owner ${r.owner})`) }, 'relations in the vinops-etl schemas owned by another role: not granted to the group roles');
  }
  return statements.length;
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
