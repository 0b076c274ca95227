// `gardenos local db backup|restore|migrate` on a real cluster (127.0.217.x):
// a backup survives the cluster's destruction, a damaged backup restores
// nothing, and a migration from a separate PostgreSQL copies and verifies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import type { BackupManifest } from '../../src/ops/backup.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
const asRoot = process.getuid?.() === 0;

describe('gardenos local db backup, restore and migrate', { timeout: 900_000 }, () => {
  let c: TestCluster;
  let backupDir: string;
  const json = <T>(s: string) => JSON.parse(s) as T;
  const primary = async () => withPassword(json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout).endpoints.primary, c.stateDir);
  const sql = async <T extends pg.QueryResultRow>(uri: string, text: string) => {
    const client = new pg.Client({ connectionString: uri });
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  };
  const inDb = (uri: string, db: string) => uri.replace('/postgres?', `/${db}?`);

  before(async () => {
    c = await makeTestCluster('it-backup', 217);
    const up = await c.cli(['local', 'up']);
    assert.equal(up.code, 0, up.stderr);
    const uri = await primary();
    await sql(uri, "CREATE ROLE gardener LOGIN PASSWORD 'grow-things'");
    await sql(uri, 'CREATE DATABASE garden OWNER gardener');
    await sql(
      inDb(uri, 'garden'),
      "CREATE TABLE beds (id int PRIMARY KEY, plant text); INSERT INTO beds SELECT g, 'plant ' || g FROM generate_series(1, 2500) g; CREATE SCHEMA shed; CREATE TABLE shed.tools (name text); INSERT INTO shed.tools VALUES ('spade'), ('rake'); ALTER TABLE beds OWNER TO gardener",
    );
  });
  after(async () => {
    await c?.cleanup();
  });

  it('backs up roles and every database with row counts and checksums, 0600', async () => {
    backupDir = `${c.dir}/backup`;
    const r = await c.cli(['local', 'db', 'backup', '--out', backupDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { manifest } = json<{ manifest: BackupManifest }>(r.stdout);
    const garden = manifest.databases.find((d) => d.name === 'garden')!;
    assert.deepEqual(garden.tables, { 'public.beds': 2500, 'shed.tools': 2 });
    assert.equal(garden.owner, 'gardener');
    assert.match(garden.sha256, /^[0-9a-f]{64}$/);
    assert.ok(manifest.databases.some((d) => d.name === 'postgres'));
    for (const f of ['manifest.json', 'globals.sql', garden.file]) assert.equal((await stat(`${backupDir}/${f}`)).mode & 0o777, 0o600, f);
    assert.equal((await stat(backupDir)).mode & 0o777, 0o700);
    // Progress per database on stderr.
    assert.ok(
      r.stderr.split('\n').some((l) => l.includes('"member":"garden"') && l.includes('"status":"done"')),
      r.stderr,
    );
  });

  it('restores into a cluster built afresh after destroy, and every table matches', async () => {
    assert.equal((await c.cli(['local', 'destroy', '--yes'])).code, 0);
    const up = await c.cli(['local', 'up']);
    assert.equal(up.code, 0, up.stderr);
    const r = await c.cli(['local', 'db', 'restore', backupDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = json<{ databases: { name: string; created: boolean; rows: number }[]; safetyBackup: string | null }>(r.stdout);
    assert.deepEqual(
      result.databases.find((d) => d.name === 'garden'),
      { name: 'garden', created: true, tables: 2, rows: 2502 },
    );
    assert.equal(result.safetyBackup, null, 'nothing was overwritten, so nothing needed saving');
    const uri = await primary();
    assert.deepEqual(await sql(inDb(uri, 'garden'), 'SELECT count(*)::int AS n FROM beds'), [{ n: 2500 }]);
    // The application role came back with its password; the cluster's own roles kept the new cluster's.
    const asGardener = new URL(inDb(uri, 'garden'));
    asGardener.username = 'gardener';
    asGardener.password = 'grow-things';
    assert.deepEqual(await sql(asGardener.toString(), 'SELECT count(*)::int AS n FROM beds'), [{ n: 2500 }]);
    const s = json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout);
    assert.equal(s.healthy, true, s.problems.join('; '));
  });

  it('refuses to overwrite without confirmation, and with --yes backs up what it replaces first', async () => {
    const uri = inDb(await primary(), 'garden');
    await sql(uri, 'DELETE FROM beds WHERE id > 100');
    const refused = await c.cli(['local', 'db', 'restore', backupDir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to restore over garden without confirmation/);
    assert.deepEqual(await sql(uri, 'SELECT count(*)::int AS n FROM beds'), [{ n: 100 }], 'nothing changed');
    const r = await c.cli(['local', 'db', 'restore', backupDir, '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { safetyBackup } = json<{ safetyBackup: string }>(r.stdout);
    const saved = json<BackupManifest>(await readFile(`${safetyBackup}/manifest.json`, 'utf8'));
    assert.deepEqual(
      saved.databases.map((d) => [d.name, d.tables['public.beds']]),
      [['garden', 100]],
    );
    assert.deepEqual(await sql(uri, 'SELECT count(*)::int AS n FROM beds'), [{ n: 2500 }]);
  });

  it('restores nothing from a damaged backup', async () => {
    const manifest = json<BackupManifest>(await readFile(`${backupDir}/manifest.json`, 'utf8'));
    const file = `${backupDir}/${manifest.databases.find((d) => d.name === 'garden')!.file}`;
    const bytes = await readFile(file);
    const i = bytes.length - 10;
    bytes[i] = bytes[i]! ^ 0xff;
    await writeFile(file, bytes);
    const r = await c.cli(['local', 'db', 'restore', backupDir, '--yes']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backup .* is damaged; nothing was restored/);
    assert.match(r.stderr, /garden\.dump: sha256 /);
  });

  describe('migrate from a separate PostgreSQL', () => {
    const host = '127.0.217.50';
    const port = 5432;
    let dataDir: string;
    const pgctl = (...args: string[]) => run(asRoot ? 'runuser' : `${BIN}/pg_ctl`, asRoot ? ['-u', 'postgres', '--', `${BIN}/pg_ctl`, ...args] : args);

    before(async () => {
      // A plain PostgreSQL, as the old Docker Compose setup ran: password auth over TCP, no TLS.
      const base = `${c.dir}/source`;
      dataDir = `${base}/data`;
      await mkdir(base, { recursive: true });
      await writeFile(`${base}/pw`, 'old-secret\n');
      if (asRoot) {
        await chown(base, ...(await postgresIds()));
        await chown(`${base}/pw`, ...(await postgresIds()));
      }
      await chmod(base, 0o700);
      const initdb = [`${BIN}/initdb`, '-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${base}/pw`];
      await run(asRoot ? 'runuser' : initdb[0]!, asRoot ? ['-u', 'postgres', '--', ...initdb] : initdb.slice(1));
      await pgctl('-D', dataDir, '-l', `${base}/log`, '-w', '-o', `-c listen_addresses=${host} -p ${port} -k ${base}`, 'start');
      const uri = `postgresql://postgres:old-secret@${host}:${port}/postgres?sslmode=disable`;
      await sql(uri, 'CREATE DATABASE legacy');
      await sql(
        uri.replace('/postgres?', '/legacy?'),
        'CREATE TABLE orders (id bigint PRIMARY KEY, total numeric); INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 4000) g; CREATE TABLE empty_one (x int)',
      );
    });
    after(async () => {
      if (dataDir) await pgctl('-D', dataDir, '-m', 'immediate', 'stop').catch(() => {});
    });

    it('copies the databases and verifies every table, and can run again', async () => {
      const from = `postgresql://postgres:old-secret@${host}:${port}/postgres?sslmode=disable`;
      const r = await c.cli(['local', 'db', 'migrate', '--from', from, '--database', 'legacy', '--yes', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes('old-secret') && !r.stderr.includes('old-secret'), 'the source password is printed');
      const result = json<{ databases: { name: string; tables: number; rows: number }[]; dump: string }>(r.stdout);
      assert.deepEqual(result.databases, [{ name: 'legacy', created: true, tables: 2, rows: 4000 }]);
      const uri = inDb(await primary(), 'legacy');
      assert.deepEqual(await sql(uri, 'SELECT count(*)::int AS n, sum(total)::text AS s FROM orders'), [{ n: 4000, s: '12003000.0' }]);
      // Safe to re-run: the second copy replaces the first (after a backup of it) and verifies again.
      await sql(`postgresql://postgres:old-secret@${host}:${port}/legacy?sslmode=disable`, 'INSERT INTO orders VALUES (4001, 1)');
      const again = await c.cli(['local', 'db', 'migrate', '--from', from, '--database', 'legacy', '--yes', '--json']);
      assert.equal(again.code, 0, again.stderr);
      const second = json<{ databases: { name: string; created: boolean; rows: number }[]; safetyBackup: string | null }>(again.stdout);
      assert.deepEqual(
        second.databases.map((d) => [d.name, d.created, d.rows]),
        [['legacy', false, 4001]],
      );
      assert.ok(second.safetyBackup, 'the overwritten copy was backed up first');
    });

    it('names a source it cannot reach', async () => {
      const r = await c.cli(['local', 'db', 'migrate', '--from', `postgresql://postgres:wrong@${host}:${port}/postgres?sslmode=disable`, '--yes']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cannot connect to 127\.0\.217\.50:5432 \(database postgres\): .*password authentication failed/);
      assert.ok(!r.stderr.includes('wrong@'), 'the password is printed');
    });
  });
});

async function postgresIds(): Promise<[number, number]> {
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'))!;
  const [, , uid, gid] = line.split(':');
  return [Number(uid), Number(gid)];
}
