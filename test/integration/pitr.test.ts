// Backups with pgBackRest on a real local cluster (127.0.234.x): `local up --with-backups` archives WAL
// into an encrypted repository and takes the first full backup; `db restore --to <time>` rebuilds the
// cluster at a point reached across a switchover and a crash of the primary (rows committed before the
// point present, rows after it absent); `db backup verify` restores into a throwaway instance and
// compares with a standby at the same point; a target before the first backup and a damaged backup
// file are refused with messages that name them, and leave the cluster as it was.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { openLocalCluster } from '../../src/local/cluster.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import type { BackupInfo, RepositoryInfo, VerifyResult } from '../../src/ops/pgbackrest.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

describe('backups: WAL archiving, point-in-time recovery and restore tests with pgBackRest', { timeout: 900_000 }, () => {
  let c: TestCluster;
  const json = <T>(s: string) => JSON.parse(s) as T;
  const status = async () => json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout);
  const sql = async <T extends pg.QueryResultRow>(text: string, params: unknown[] = []) => {
    const client = new pg.Client({ connectionString: await withPassword((await status()).endpoints.primary, c.stateDir) });
    await client.connect();
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  const healthy = () =>
    waitFor(
      'a healthy cluster (leader, synchronous standby, router following)',
      async () => {
        const s = await status();
        if (s.problems.length) throw new Error(s.problems.join('; '));
        return s;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  // What status says of WAL archiving: the problem it reports while archiving fails, and its end.
  const stalledArchiver = () =>
    waitFor('status to report the stalled archiver', async () => (await status()).problems.find((p) => /WAL archiving is failing/.test(p)), {
      timeoutMs: 90_000,
      intervalMs: 1000,
    });
  const archivingCaughtUp = () =>
    waitFor(
      'archiving to catch up',
      async () => {
        const s = await status();
        return !s.problems.some((p) => /WAL archiving is failing/.test(p)) && s.backups?.archiver?.failing === false;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  const write = (phase: string, n: number) => sql(`INSERT INTO ledger (phase) SELECT $1 FROM generate_series(1, ${n})`, [phase]);
  const counts = async () =>
    Object.fromEntries((await sql<{ phase: string; n: string }>('SELECT phase, count(*) AS n FROM ledger GROUP BY phase')).map((r) => [r.phase, Number(r.n)]));
  const list = async () => {
    const r = await c.cli(['local', 'db', 'backup', 'list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return json<RepositoryInfo & { lastVerified: VerifyResult | null }>(r.stdout);
  };

  before(async () => {
    // The default schedule (full on Sundays, diff the other days, at 02:00) moved out of the test's way: once a year.
    c = await makeTestCluster('it-pitr', 234, 'backups: { schedule: { full: "0 0 1 1 *", diff: "0 0 1 1 *" } }');
    const up = await c.cli(['local', 'up', '--with-backups', '--json']);
    assert.equal(up.code, 0, up.stderr);
    await sql('CREATE TABLE ledger (id bigserial PRIMARY KEY, phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  });
  after(async () => {
    await c?.cleanup();
  });

  it('archives WAL into an encrypted repository and takes the first full backup at `up`; the key is never printed', async () => {
    const info = await list();
    assert.equal(info.backups.length, 1);
    assert.equal(info.backups[0]!.type, 'full');
    assert.match(info.archive.max ?? '', /^[0-9A-F]{24}$/);
    // Encrypted at rest: pgBackRest's files start with OpenSSL's "Salted__" header, not zstd's magic.
    const repo = join(c.stateDir, 'pgbackrest', 'repo');
    const walDir = join(repo, 'archive', 'it-pitr', (await readdir(join(repo, 'archive', 'it-pitr'))).find((d) => /^\d+-\d+$/.test(d))!);
    const segDir = (await readdir(walDir)).find((d) => /^[0-9A-F]{16}$/.test(d))!;
    const segment = (await readdir(join(walDir, segDir)))[0]!;
    assert.equal((await readFile(join(walDir, segDir, segment))).subarray(0, 8).toString('latin1'), 'Salted__', segment);
    // The key lives in pgbackrest.conf (0600) and the secrets file, and in nothing GardenOS printed.
    const conf = join(c.stateDir, 'pgbackrest', 'pgbackrest.conf');
    assert.equal((await stat(conf)).mode & 0o777, 0o600);
    const { backupCipherPass } = json<{ backupCipherPass: string }>(await readFile(join(c.stateDir, 'secrets', 'passwords.json'), 'utf8'));
    assert.ok((await readFile(conf, 'utf8')).includes(`repo1-cipher-pass=${backupCipherPass}`));
    const again = await c.cli(['local', 'up', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!`${again.stdout}${again.stderr}`.includes(backupCipherPass));
    assert.equal((await list()).backups.length, 1, 'a second `up` takes no second full backup');
    const s = await status();
    assert.equal(s.backups?.readable, true);
    assert.equal(s.backups?.newest?.type, 'full');
    assert.deepEqual(s.problems, []);
  });

  it('refuses a target before the first backup, naming the earliest point, and changes nothing', async () => {
    await write('early', 10);
    const r = await c.cli(['local', 'db', 'restore', '--to', '2001-01-01T00:00:00Z', '--yes']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /before the first backup's consistent point/);
    assert.match(r.stderr, /earliest point this repository can restore to is \d{4}-/);
    await healthy();
    assert.equal((await counts()).early, 10, 'the cluster was left as it was');
    assert.equal((await list()).backups.length, 1, 'no safety backup for a refused restore');
  });

  it('restores the whole cluster to a point in time reached across a switchover and a crash of the primary', async () => {
    await write('a', 500);
    const incr = await c.cli(['local', 'db', 'backup', '--type', 'incr', '--json']);
    assert.equal(incr.code, 0, incr.stderr);
    assert.equal(json<{ backup: BackupInfo }>(incr.stdout).backup.type, 'incr');
    await write('b', 500);
    const sw = await c.cli(['local', 'db', 'switchover', '--yes']);
    assert.equal(sw.code, 0, sw.stderr);
    await healthy();
    // A crash: the new primary's postmaster is killed; Patroni (or a failover) brings a primary back.
    const leader = (await status()).members.find((m) => m.role === 'leader')!.name;
    const pid = Number((await readFile(join(c.stateDir, 'pg', leader, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'a primary again after the crash (restarted by Patroni, or another member promoted)',
      async () => {
        const s = await status();
        const now = s.members.find((m) => m.role === 'leader' && m.state === 'running')?.name;
        if (!now || s.problems.length) return false;
        const postmaster = Number((await readFile(join(c.stateDir, 'pg', now, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
        if (postmaster === pid) return false;
        await sql('SELECT 1');
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    await write('c', 500);
    // The target is the server's own clock after 'c' committed; 'd' commits after it.
    const t = (await sql<{ t: Date }>('SELECT clock_timestamp() AS t'))[0]!.t;
    await write('d', 500);
    const timelineBefore = Math.max(...(await status()).members.map((m) => m.timeline ?? 0));
    assert.deepEqual(await counts(), { early: 10, a: 500, b: 500, c: 500, d: 500 });

    // First beside the cluster: the same point in an instance of its own, read while the cluster runs on.
    const b = await c.cli(['local', 'db', 'restore', '--to', t.toISOString(), '--beside', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const beside = json<{ target: string; socketDir: string; port: number; user: string }>(b.stdout);
    assert.equal(beside.target, t.toISOString());
    const { superuserPassword } = json<{ superuserPassword: string }>(await readFile(join(c.stateDir, 'secrets', 'passwords.json'), 'utf8'));
    const copy = new pg.Client({ host: beside.socketDir, port: beside.port, user: beside.user, password: superuserPassword, database: 'postgres' });
    await copy.connect();
    try {
      const rows = (await copy.query<{ phase: string; n: string }>('SELECT phase, count(*) AS n FROM ledger GROUP BY phase')).rows;
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.phase, Number(r.n)])), { early: 10, a: 500, b: 500, c: 500 }, "beside: up to the target, no 'd'");
      assert.equal((await copy.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'promoted at the target');
    } finally {
      await copy.end();
    }
    assert.deepEqual(await counts(), { early: 10, a: 500, b: 500, c: 500, d: 500 }, 'the cluster itself was not touched');
    const twice = await c.cli(['local', 'db', 'restore', '--to', 'latest', '--beside']);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /already runs beside the cluster[\s\S]*--stop-beside/);
    const stopped = await c.cli(['local', 'db', 'restore', '--stop-beside', '--json']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(json(stopped.stdout), { stopped: true });
    await assert.rejects(stat(beside.socketDir), 'its directory is removed');

    const r = await c.cli(['local', 'db', 'restore', '--to', t.toISOString(), '--yes', '--json', '--timeout', '300']);
    assert.equal(r.code, 0, r.stderr);
    const result = json<{ target: string; from: string; safetyBackup: string | null; newBackup: string; leader: string }>(r.stdout);
    assert.equal(result.target, t.toISOString());
    assert.ok(result.safetyBackup, 'the state before the restore was backed up first');
    assert.deepEqual(await counts(), { early: 10, a: 500, b: 500, c: 500 }, "every row committed before the target, none after ('d')");
    const s = await healthy();
    assert.equal(s.members.length, 3);
    assert.ok(Math.max(...s.members.map((m) => m.timeline ?? 0)) > timelineBefore, 'the restored cluster runs on a new timeline');
    // It is a working cluster again, archiving on its new timeline.
    await write('e', 5);
    assert.equal((await counts()).e, 5);
    const backups = (await list()).backups;
    assert.ok(backups.some((b) => b.label === result.safetyBackup));
    assert.equal(backups.at(-1)?.label, result.newBackup, 'a full backup of the restored cluster is the newest');
    assert.equal(backups.at(-1)?.type, 'full');
  });

  it('verifies a backup by restoring it beside the cluster: pg_amcheck clean and row counts equal to a standby at the same point', async () => {
    await write('f', 300);
    const r = await c.cli(['local', 'db', 'backup', 'verify', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const v = json<VerifyResult>(r.stdout);
    const newest = (await list()).backups.at(-1)!;
    assert.equal(v.label, newest.label);
    assert.match(v.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(
      v.databases.some((d) => d.name === 'postgres' && d.rows >= 10 + 1500 + 5 + 300),
      JSON.stringify(v.databases),
    );
    assert.equal((await list()).lastVerified?.label, v.label, 'the result is recorded');
    const s = await status();
    assert.equal(s.backups?.lastVerified?.label, v.label, 'status shows the last restore test');
    assert.equal(s.backups?.newest?.label, newest.label);
    // The throwaway instance is gone: no files left, nothing on its port.
    assert.deepEqual(await readdir(join(c.stateDir, 'pgbackrest', 'verify')).catch(() => []), []);
  });

  it('`db reinit` rebuilds a replica from the repository when a backup is recent, and copies it from the leader when not', async () => {
    const s = await healthy();
    const replica = s.members.find((m) => m.role === 'replica' || m.role === 'sync_standby')!;
    const log = join(c.stateDir, 'logs', `patroni-${replica.name}.log`);
    const since = async () => {
      const offset = (await stat(log)).size;
      return async () => (await readFile(log, 'utf8')).slice(offset);
    };
    const rowsOn = async (host: string) => {
      const client = new pg.Client({ connectionString: (await withPassword(s.endpoints.primary, c.stateDir)).replace(/@[^/]+\//, `@${host}:5432/`) });
      await client.connect();
      try {
        return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM ledger')).rows[0]!.n);
      } finally {
        await client.end();
      }
    };
    const reinit = async () => {
      const r = await c.cli(['local', 'db', 'reinit', replica.name, '--yes', '--json']);
      assert.equal(r.code, 0, r.stderr);
      await healthy();
    };
    await write('reinit', 50);
    const total = Object.values(await counts()).reduce((a, b) => a + b, 0);

    // A recent backup (the scheduler's record says so): Patroni's pgbackrest method restores it as a standby.
    let read = await since();
    await reinit();
    const fromRepository = await read();
    assert.match(fromRepository, /replica has been created using pgbackrest/, 'restored from the repository');
    assert.doesNotMatch(fromRepository, /replica has been created using basebackup/);
    assert.equal(
      await waitFor('the rebuilt replica to catch up', async () => ((await rowsOn(replica.host)) === total ? total : undefined), {
        timeoutMs: 60_000,
        intervalMs: 500,
      }),
      total,
    );

    // The newest backup recorded as two days old: the script declines, Patroni copies from the leader.
    const marker = join(c.stateDir, 'pgbackrest', 'newest-backup');
    const recorded = await readFile(marker, 'utf8');
    await writeFile(marker, `${Math.floor(Date.now() / 1000) - 2 * 86400}\n`);
    try {
      read = await since();
      await reinit();
      const fromLeader = await read();
      assert.match(fromLeader, /copying from the leader/);
      assert.match(fromLeader, /replica has been created using basebackup/);
      assert.equal(await rowsOn(replica.host), total);
    } finally {
      await writeFile(marker, recorded);
    }
  });

  it('reports stalled archiving when the repository is unwritable; writes go on and archiving catches up once it is fixed', async () => {
    // Every directory of the WAL archive made read-only for PostgreSQL's user (and back, whatever happens).
    const dirs: [string, number][] = [];
    const walk = async (d: string) => {
      dirs.push([d, (await stat(d)).mode & 0o7777]);
      for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) await walk(join(d, e.name));
    };
    await walk(join(c.stateDir, 'pgbackrest', 'repo', 'archive', 'it-pitr'));
    try {
      for (const [d] of dirs) await chmod(d, 0o500);
      await write('g', 100);
      await sql('SELECT pg_switch_wal()');
      const stalled = await stalledArchiver();
      assert.match(stalled, /Permission denied/, 'the cause, from pgBackRest');
      await write('g', 100);
      assert.equal((await counts()).g, 200, 'the primary keeps accepting writes while archiving stalls');
    } finally {
      for (const [d, mode] of dirs) await chmod(d, mode);
    }
    await write('h', 10);
    await sql('SELECT pg_switch_wal()');
    await archivingCaughtUp();
  });

  it('reports stalled archiving when the repository is full, naming the cause; writes go on with the WAL kept on the primary, and archiving catches up once there is room', {
    skip: asRoot ? false : 'needs root to mount a small file system over the archive (see README)',
  }, async () => {
    // The archive moved onto a tmpfs of its own size plus 32 MiB, then filled to the last byte; everything is put back after.
    const dir = join(c.stateDir, 'pgbackrest', 'repo', 'archive', 'it-pitr');
    const staging = `${dir}.before-full`;
    await archivingCaughtUp();
    const st = await stat(dir);
    const used = Number((await run('du', ['-sb', dir])).stdout.split('\t')[0]);
    const size = Math.ceil(used / 1048576) + 32;
    const filler = join(dir, 'filler');
    await run('cp', ['-a', dir, staging]);
    let mounted = false;
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${size}m,mode=${(st.mode & 0o7777).toString(8)},uid=${st.uid},gid=${st.gid}`, 'gardenos-it-pitr', dir]);
      mounted = true;
      await run('cp', ['-a', `${staging}/.`, `${dir}/`]);
      await run('sh', ['-c', `dd if=/dev/zero of=${filler} bs=1M 2>/dev/null; true`]);
      await write('i', 100);
      await sql('SELECT pg_switch_wal()');
      const stalled = await stalledArchiver();
      assert.match(stalled, /No space left on device/, 'the cause, from pgBackRest');
      await write('i', 100);
      assert.equal((await counts()).i, 200, 'the primary keeps accepting writes while the repository is full');
      const ready = await sql<{ name: string }>("SELECT name FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
      assert.ok(ready.length > 0, 'the segments not yet archived wait in pg_wal on the primary');
      await rm(filler);
      await write('j', 10);
      await sql('SELECT pg_switch_wal()');
      await archivingCaughtUp();
    } finally {
      // What was archived onto the small file system goes back where it belongs.
      if (mounted) {
        await rm(filler, { force: true });
        await run('cp', ['-a', `${dir}/.`, `${staging}/`]);
        await run('umount', [dir]);
        await run('cp', ['-a', `${staging}/.`, `${dir}/`]);
      }
      await rm(staging, { recursive: true, force: true });
    }
    // Nothing was lost from the archive: every segment archived so far can be read back.
    const info = await list();
    assert.ok(info.archive.max && info.archive.max >= (await sql<{ f: string }>('SELECT last_archived_wal AS f FROM pg_stat_archiver'))[0]!.f);
  });

  it('names the damaged file when a backup in the repository is corrupted, and restores nothing from it', async () => {
    const full = await c.cli(['local', 'db', 'backup', '--type', 'full', '--json']);
    assert.equal(full.code, 0, full.stderr);
    const label = json<{ backup: BackupInfo }>(full.stdout).backup.label;
    const base = join(c.stateDir, 'pgbackrest', 'repo', 'backup', 'it-pitr', label, 'pg_data', 'base');
    // The largest file of the backup's first database directory.
    let victim = '';
    let size = 0;
    for (const db of await readdir(base)) {
      for (const f of await readdir(join(base, db))) {
        const st = await stat(join(base, db, f));
        if (st.size > size) [victim, size] = [join(base, db, f), st.size];
      }
    }
    const bytes = await readFile(victim);
    for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 16; i++) bytes[i] = bytes[i]! ^ 0xff;
    await writeFile(victim, bytes);
    const r = await c.cli(['local', 'db', 'backup', 'verify', '--set', label]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`backup ${label} is damaged`));
    const relative = victim.slice(victim.indexOf('pg_data/')).replace(/\.zst$/, '');
    assert.ok(r.stderr.includes(relative), `the damaged file ${relative} is named:\n${r.stderr}`);
    assert.deepEqual(await readdir(join(c.stateDir, 'pgbackrest', 'verify')).catch(() => []), [], 'nothing was restored');
  });

  it('takes scheduled backups without a person: the scheduler runs backups.schedule and status shows its last run', async () => {
    const before = new Set((await list()).backups.map((b) => b.label));
    // A schedule that fires within seconds: an incremental every 5 s (full and diff once a year).
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    await local.supervisor.stop(local.specs.scheduler, { graceMs: 30_000 });
    await writeFile(
      c.configFile,
      (await readFile(c.configFile, 'utf8')).replace(
        'backups: { schedule: { full: "0 0 1 1 *", diff: "0 0 1 1 *" } }',
        'backups: { schedule: { incr: "*/5 * * * * *", diff: "0 0 1 1 *", full: "0 0 1 1 *" } }',
      ),
    );
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const made = await waitFor('a scheduled incremental backup', async () => (await list()).backups.find((b) => !before.has(b.label) && b.type === 'incr'), {
      timeoutMs: 90_000,
      intervalMs: 1000,
    });
    const s = await status();
    assert.equal(s.backups?.scheduler.running, true);
    assert.equal(s.backups?.scheduler.next?.kind, 'incr');
    const last = await waitFor('the run recorded', async () => (await status()).backups?.scheduler.lastRuns.incr, { timeoutMs: 30_000, intervalMs: 500 });
    assert.equal(last.ok, true, last.error);
    assert.ok(last.label && (last.label === made.label || !before.has(last.label)));
    const logs = await c.cli(['local', 'logs', 'backup-scheduler']);
    assert.match(logs.stdout, /"msg":"done","kind":"incr"/);
    // `down` stops it with the rest.
    assert.equal((await c.cli(['local', 'down'])).code, 0);
    assert.equal(await local.supervisor.pid(local.specs.scheduler), undefined);
  });
});
