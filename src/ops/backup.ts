// Logical backup, restore and migration with PostgreSQL's own tools:
// pg_dumpall --globals-only for roles, pg_dump -Fc per database. Each dump is
// taken in the snapshot its row counts were read in (pg_export_snapshot), so a
// restore can be verified table by table; every file carries a SHA-256 in the
// manifest, checked before anything is restored.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { USERS } from '../render/files.ts';
import { ensureDir, writeFileAtomic } from '../util/files.ts';

export const BACKUP_FORMAT = 'gardenos-backup/v1';

/** A server to dump from or restore into: libpq settings, with the password kept out of argv. */
export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** libpq password file, when the password is not given. */
  passFile?: string;
  sslmode: string;
  sslrootcert?: string;
  /** Where pg_dump, pg_restore and psql live (the cluster's PostgreSQL version). */
  binDir: string;
  /** A name for messages ("cluster devx", "source db.example:5432"). */
  label: string;
}

export interface DatabaseEntry {
  name: string;
  owner: string;
  encoding: string;
  file: string;
  sha256: string;
  bytes: number;
  /** Rows per table ("schema.table"), counted in the snapshot the dump was taken in. */
  tables: Record<string, number>;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  takenAt: string;
  source: string;
  serverVersion: string;
  globals: { file: string; sha256: string; bytes: number };
  databases: DatabaseEntry[];
}

/** Roles GardenOS manages in every cluster (their passwords are the cluster's own secrets): never restored over. */
export const MANAGED_ROLES: readonly string[] = [USERS.superuser, USERS.replication, USERS.rewind];

/** Parses postgres://user:pass@host:port/db?sslmode=… into a target (the password goes to the environment, not argv). */
export function targetFromUrl(url: string, binDir: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GardenError('CONFIG_INVALID', `not a PostgreSQL URL: ${url.replace(/:[^:@/]*@/, ':***@')}`, {
      hint: 'postgresql://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require',
    });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    throw new GardenError('CONFIG_INVALID', `not a PostgreSQL URL (scheme ${u.protocol})`, { hint: 'postgresql://USER:PASSWORD@HOST:PORT/DATABASE' });
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username || 'postgres'),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    sslmode: u.searchParams.get('sslmode') ?? 'prefer',
    ...(u.searchParams.get('sslrootcert') ? { sslrootcert: u.searchParams.get('sslrootcert')! } : {}),
    binDir,
    label: `${host}:${u.port || 5432}`,
  };
}

function libpqEnv(t: PgTarget, database: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    PGHOST: t.host,
    PGPORT: String(t.port),
    PGUSER: t.user,
    PGDATABASE: database,
    PGSSLMODE: t.sslmode,
    PGCONNECT_TIMEOUT: '10',
    ...(t.password !== undefined ? { PGPASSWORD: t.password } : {}),
    ...(t.passFile ? { PGPASSFILE: t.passFile } : {}),
    ...(t.sslrootcert ? { PGSSLROOTCERT: t.sslrootcert } : {}),
  };
}

async function connect(t: PgTarget, database: string): Promise<pg.Client> {
  const password = t.password ?? (t.passFile ? passFromFile(await readFile(t.passFile, 'utf8'), t) : undefined);
  const ssl =
    t.sslmode === 'disable'
      ? false
      : {
          rejectUnauthorized: t.sslmode === 'verify-ca' || t.sslmode === 'verify-full',
          ...(t.sslrootcert ? { ca: await readFile(t.sslrootcert, 'utf8') } : {}),
          ...(t.sslmode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
        };
  const client = new pg.Client({
    host: t.host,
    port: t.port,
    user: t.user,
    database,
    ...(password !== undefined ? { password } : {}),
    ssl,
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `cannot connect to ${t.label} (database ${database}): ${describe(e)}`, {
      hint: 'check the address, the credentials and sslmode',
    });
  }
  return client;
}

/** The password libpq would take from a .pgpass file for this target. */
export function passFromFile(text: string, t: PgTarget): string | undefined {
  const fields = (line: string) => line.match(/(?:\\.|[^:])+|(?<=:)(?=:|$)/g)?.map((f) => f.replace(/\\(.)/g, '$1')) ?? [];
  for (const line of text.split('\n')) {
    const [host, port, , user, password] = fields(line);
    if (password === undefined) continue;
    if ((host === '*' || host === t.host) && (port === '*' || port === String(t.port)) && (user === '*' || user === t.user)) return password;
  }
  return undefined;
}

/** Runs a PostgreSQL tool; stderr is kept for the error. */
function tool(t: PgTarget, name: string, args: string[], database: string): Promise<{ stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(t.binDir, name), args, { env: libpqEnv(t, database), stdio: ['ignore', 'pipe', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdout.resume();
    child.on('error', (e) =>
      reject(
        new GardenError('MISSING_PACKAGE', `cannot run ${join(t.binDir, name)}: ${describe(e)}`, {
          hint: 'install PostgreSQL 15 client tools: apt-get install -y postgresql-15',
        }),
      ),
    );
    child.on('close', (code) => resolve({ stderr: Buffer.concat(err).toString('utf8'), code: code ?? 1 }));
  });
}

async function mustRun(t: PgTarget, name: string, args: string[], database: string): Promise<string> {
  const r = await tool(t, name, args, database);
  if (r.code !== 0)
    throw new GardenError('BACKEND_UNAVAILABLE', `${name} failed on ${t.label} (database ${database})`, { details: r.stderr.trim().split('\n').slice(-8) });
  return r.stderr;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;

/** Row counts of every ordinary table, in the client's current transaction. */
export async function countRows(client: pg.Client): Promise<Record<string, number>> {
  const tables = await client.query<{ s: string; t: string }>(
    "SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2",
  );
  const counts: Record<string, number> = {};
  for (const { s, t } of tables.rows)
    counts[`${s}.${t}`] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(s)}.${quoteIdent(t)}`)).rows[0]!.n);
  return counts;
}

export function listDatabases(t: PgTarget): Promise<{ name: string; owner: string; encoding: string }[]> {
  return withDb(
    t,
    'postgres',
    async (client) =>
      (
        await client.query<{ name: string; owner: string; encoding: string }>(
          'SELECT datname AS name, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname',
        )
      ).rows,
  );
}

/** A database error as a GardenError naming the server and the step; GardenErrors pass through. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof GardenError) throw e;
    throw new GardenError('BACKEND_UNAVAILABLE', `${what}: ${describe(e)}`, { cause: e });
  }
}

/** Dumps globals and each database (all by default) into `dir` (0700; files 0600) and writes manifest.json. */
export function backup(t: PgTarget, dir: string, opts: { databases?: string[]; report: Reporter }): Promise<BackupManifest> {
  return step(`backup of ${t.label} failed`, () => backupUnwrapped(t, dir, opts));
}

async function backupUnwrapped(t: PgTarget, dir: string, opts: { databases?: string[]; report: Reporter }): Promise<BackupManifest> {
  await ensureDir(dir, 0o700);
  const all = await listDatabases(t);
  const wanted = opts.databases?.length ? opts.databases : all.map((d) => d.name);
  const missing = wanted.filter((w) => !all.some((d) => d.name === w));
  if (missing.length)
    throw new GardenError('STATE_CONFLICT', `${t.label} has no database ${missing.join(', ')}`, { hint: `it has: ${all.map((d) => d.name).join(', ')}` });

  opts.report({ kind: 'step', step: 'globals', status: 'start' });
  const globalsFile = join(dir, 'globals.sql');
  await mustRun(t, 'pg_dumpall', ['--globals-only', '--no-tablespaces', '-f', globalsFile], 'postgres');
  await chmodPrivate(globalsFile);
  const globals = { file: 'globals.sql', sha256: await sha256(globalsFile), bytes: (await stat(globalsFile)).size };
  opts.report({ kind: 'step', step: 'globals', status: 'done', detail: `${globals.bytes} bytes` });

  const databases: DatabaseEntry[] = [];
  let serverVersion = '';
  for (const db of all.filter((d) => wanted.includes(d.name))) {
    opts.report({ kind: 'step', step: 'dump', member: db.name, status: 'start' });
    const client = await connect(t, db.name);
    try {
      serverVersion ||= (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
      // One snapshot for the counts and the dump: what the manifest says is exactly what the file holds.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const snapshot = (await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
      const tables = await countRows(client);
      const file = `${db.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.dump`;
      await mustRun(t, 'pg_dump', ['--format=custom', `--snapshot=${snapshot}`, '-f', join(dir, file), db.name], db.name);
      await client.query('COMMIT');
      await chmodPrivate(join(dir, file));
      const entry = { ...db, file, sha256: await sha256(join(dir, file)), bytes: (await stat(join(dir, file))).size, tables };
      databases.push(entry);
      const rows = Object.values(tables).reduce((a, b) => a + b, 0);
      opts.report({
        kind: 'step',
        step: 'dump',
        member: db.name,
        status: 'done',
        detail: `${Object.keys(tables).length} tables, ${rows} rows, ${entry.bytes} bytes`,
      });
    } finally {
      await client.end().catch(() => {});
    }
  }
  const manifest: BackupManifest = { format: BACKUP_FORMAT, takenAt: new Date().toISOString(), source: t.label, serverVersion, globals, databases };
  await writeFileAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, 0o600);
  return manifest;
}

const chmodPrivate = (file: string) => chmod(file, 0o600);

/** Reads a backup's manifest and checks every file against its checksum; nothing is restored from a damaged backup. */
export async function verifyBackup(dir: string): Promise<BackupManifest> {
  const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
  if (!text) throw new GardenError('CONFIG_NOT_FOUND', `${dir} is not a GardenOS backup (no manifest.json)`);
  const manifest = JSON.parse(text) as BackupManifest;
  if (manifest.format !== BACKUP_FORMAT)
    throw new GardenError('STATE_CONFLICT', `${dir}/manifest.json has format ${String(manifest.format)}, expected ${BACKUP_FORMAT}`);
  const bad: string[] = [];
  for (const f of [manifest.globals, ...manifest.databases]) {
    const actual = await sha256(join(dir, f.file)).catch((e) => `unreadable (${describe(e)})`);
    if (actual !== f.sha256) bad.push(`${f.file}: sha256 ${actual.slice(0, 16)}…, manifest says ${f.sha256.slice(0, 16)}…`);
  }
  if (bad.length) throw new GardenError('STATE_CONFLICT', `backup ${dir} is damaged; nothing was restored`, { details: bad });
  return manifest;
}

/** globals.sql without the statements that would touch the roles GardenOS manages. */
export function filterGlobals(sql: string, managed: readonly string[] = MANAGED_ROLES): string {
  const touches = (line: string) => managed.some((r) => new RegExp(`^(CREATE|ALTER) ROLE ${quoteIdent(r).replace(/"/g, '"?')}[ ;]`).test(line));
  return sql
    .split('\n')
    .filter((l) => !touches(l))
    .join('\n');
}

export interface RestoreResult {
  databases: { name: string; created: boolean; tables: number; rows: number }[];
  rolesSkipped: string[];
}

/** Applies the globals (roles that exist are kept), then each database with pg_restore --clean, and verifies every table's row count. */
export function restore(t: PgTarget, dir: string, manifest: BackupManifest, opts: { databases?: string[]; report: Reporter }): Promise<RestoreResult> {
  return step(`restore into ${t.label} failed`, () => restoreUnwrapped(t, dir, manifest, opts));
}

async function restoreUnwrapped(t: PgTarget, dir: string, manifest: BackupManifest, opts: { databases?: string[]; report: Reporter }): Promise<RestoreResult> {
  const wanted = manifest.databases.filter((d) => !opts.databases?.length || opts.databases.includes(d.name));
  opts.report({ kind: 'step', step: 'roles', status: 'start' });
  const globalsSql = filterGlobals(await readFile(join(dir, manifest.globals.file), 'utf8'));
  const client = await connect(t, 'postgres');
  const rolesSkipped: string[] = [];
  try {
    const existing = new Set((await client.query<{ r: string }>('SELECT rolname AS r FROM pg_roles')).rows.map((x) => x.r));
    for (const stmt of globalsSql.split('\n').filter((l) => l && !l.startsWith('--') && !l.startsWith('SET ') && !l.startsWith('\\'))) {
      const create = /^CREATE ROLE "?([^";]+)"?;/.exec(stmt);
      if (create && existing.has(create[1]!)) {
        rolesSkipped.push(create[1]!);
        continue;
      }
      try {
        await client.query(stmt);
      } catch (e) {
        // A membership that is already granted is not an error worth stopping for.
        if (!/already a member|already has role/.test(describe(e)))
          throw new GardenError('STATE_CONFLICT', `restoring roles failed at: ${stmt.slice(0, 120)}`, { details: [describe(e)] });
      }
    }
    opts.report({
      kind: 'step',
      step: 'roles',
      status: 'done',
      detail: rolesSkipped.length ? `existed already, attributes updated: ${rolesSkipped.join(', ')}` : undefined,
    });

    const present = new Set((await client.query<{ d: string }>('SELECT datname AS d FROM pg_database')).rows.map((x) => x.d));
    const result: RestoreResult = { databases: [], rolesSkipped };
    for (const db of wanted) {
      opts.report({ kind: 'step', step: 'restore', member: db.name, status: 'start' });
      const created = !present.has(db.name);
      if (created)
        await client.query(
          `CREATE DATABASE ${quoteIdent(db.name)} WITH TEMPLATE template0 ENCODING '${db.encoding.replace(/'/g, '')}' OWNER ${quoteIdent(db.owner)}`,
        );
      await mustRun(t, 'pg_restore', ['--clean', '--if-exists', '--exit-on-error', '--single-transaction', '-d', db.name, join(dir, db.file)], db.name);
      const counts = await withDb(t, db.name, countRows);
      const wrong = Object.entries(db.tables)
        .filter(([table, n]) => counts[table] !== n)
        .map(([table, n]) => `${db.name}.${table}: ${counts[table] ?? 'missing'} rows, backup has ${n}`);
      if (wrong.length) throw new GardenError('STATE_CONFLICT', `database ${db.name} does not match the backup after restore`, { details: wrong });
      const rows = Object.values(db.tables).reduce((a, b) => a + b, 0);
      result.databases.push({ name: db.name, created, tables: Object.keys(db.tables).length, rows });
      opts.report({ kind: 'step', step: 'restore', member: db.name, status: 'done', detail: `${Object.keys(db.tables).length} tables, ${rows} rows verified` });
    }
    return result;
  } finally {
    await client.end().catch(() => {});
  }
}

async function withDb<T>(t: PgTarget, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(t, database);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Which of `names` exist on the target with at least one table: what a restore or migration would overwrite. */
export async function wouldOverwrite(t: PgTarget, names: string[]): Promise<string[]> {
  const present = new Set((await listDatabases(t)).map((d) => d.name));
  const hit: string[] = [];
  for (const name of names.filter((n) => present.has(n))) {
    if (Object.keys(await withDb(t, name, countRows)).length > 0) hit.push(name);
  }
  return hit;
}
