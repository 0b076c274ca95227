// Backups benchmark on a local cluster (127.0.235.x): what `--with-backups` adds to `local up`, base
// backup and restore throughput with pgBackRest (zstd, AES-256) against a plain pg_basebackup of the same
// database, how long a finished WAL segment takes to reach the repository under write load, and the time
// of a point-in-time recovery of the whole cluster. The database is BENCH_BK_MB of table data (default 1024).
//   npm run bench:backups
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { table } from '../src/cli/output.ts';
import { pgbackrestContext } from '../src/local/backups.ts';
import { openLocalCluster } from '../src/local/cluster.ts';
import { runPgbackrest } from '../src/ops/pgbackrest.ts';
import { makeTestCluster, withPassword } from '../test/helpers/local.ts';
import { formatMs, percentile } from './stats.ts';

const MB = Number(process.env.BENCH_BK_MB ?? 1024);
const rows: string[][] = [];
const progress = (what: string) => process.stderr.write(`bench:backups ${new Date().toISOString().slice(11, 19)} ${what}\n`);
const c = await makeTestCluster('bench-bk', 235);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void c.cleanup().finally(() => process.exit(130)));
const mbps = (bytes: number, ms: number) => `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)} MB/s`;
const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const v = await fn();
  return [v, performance.now() - t];
};
const must = async (args: string[]) => {
  const r = await c.cli(args);
  if (r.code !== 0) throw new Error(`gardenos ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};
try {
  progress('local up, then down, then up --with-backups (the first full backup included)');
  await must(['local', 'up']);
  await must(['local', 'down']);
  const [, plainUp] = await timed(() => must(['local', 'up']));
  await must(['local', 'down']);
  const [, backupsUp] = await timed(() => must(['local', 'up', '--with-backups']));
  rows.push(['local up (from stopped)', formatMs(plainUp), 'without backups']);
  rows.push(['local up --with-backups (from stopped)', formatMs(backupsUp), 'stanza, check, first full backup of a new cluster']);

  const status = JSON.parse(await must(['local', 'status', '--json'])) as { endpoints: { primary: string } };
  const db = new pg.Client({ connectionString: await withPassword(status.endpoints.primary, c.stateDir) });
  db.on('error', () => {});
  await db.connect();
  progress(`loading ${MB} MB`);
  await db.query('CREATE TABLE IF NOT EXISTS payload (id bigint PRIMARY KEY, body text NOT NULL)');
  // ~1 kB a row of random hex (it compresses about as well as text does, not like repeated bytes), in 64 MB transactions.
  const perBatch = 64 * 1024;
  const row = "array_to_string(ARRAY(SELECT md5(random()::text || g) FROM generate_series(1, 30) WHERE g > 0), '')";
  for (let done = 0; done < MB * 1024; done += perBatch) {
    await db.query(`INSERT INTO payload SELECT g, ${row} FROM generate_series($1::bigint, $2::bigint) g`, [done + 1, done + perBatch]);
  }
  const size = Number((await db.query<{ s: string }>("SELECT pg_database_size('postgres') AS s")).rows[0]!.s);

  const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
  const ctx = pgbackrestContext(local);
  progress('full backup');
  const [fullOut, fullMs] = await timed(() => must(['local', 'db', 'backup', '--type', 'full', '--json']));
  const full = (JSON.parse(fullOut) as { backup: { label: string; repositoryBytes: number } }).backup;
  rows.push([
    `full backup, ${(size / 1024 / 1024).toFixed(0)} MB database`,
    `${formatMs(fullMs)} (${mbps(size, fullMs)})`,
    `from a standby; ${(full.repositoryBytes / 1024 / 1024).toFixed(0)} MB stored (zstd + AES-256)`,
  ]);

  progress('pgbackrest restore into a scratch directory');
  const scratch = await mkdtemp(join(tmpdir(), 'bench-bk-restore-'));
  try {
    if (local.pgOwner) await import('node:fs/promises').then((f) => f.chown(scratch, local.pgOwner!.uid, local.pgOwner!.gid));
    const [, restoreMs] = await timed(() =>
      runPgbackrest(ctx, 'restore', [`--pg1-path=${scratch}/data`, `--set=${full.label}`, '--type=immediate', '--archive-mode=off']),
    );
    rows.push(['pgbackrest restore of that backup', `${formatMs(restoreMs)} (${mbps(size, restoreMs)})`, 'files only; replay not included']);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  progress('pg_basebackup of the same database, for comparison');
  const base = await mkdtemp(join(tmpdir(), 'bench-bk-base-'));
  try {
    const secrets = JSON.parse(await readFile(join(c.stateDir, 'secrets', 'passwords.json'), 'utf8')) as { replicationPassword: string };
    const leader = (JSON.parse(await must(['local', 'status', '--json'])) as { members: { name: string; role: string }[] }).members.find(
      (m) => m.role === 'leader',
    )!.name;
    const [, baseMs] = await timed(
      () =>
        new Promise<void>((resolve, reject) => {
          // As Patroni's replicas do: the replication user over TLS to the leader's address.
          const address = local.topology.postgres.find((m) => m.name === leader)!.address;
          const p = spawn(
            join(ctx.binDir, 'pg_basebackup'),
            ['-D', `${base}/data`, '-h', address, '-p', String(local.config.postgres.port), '-U', 'replicator', '-X', 'stream', '-c', 'fast', '--no-sync'],
            {
              env: { PATH: process.env.PATH, PGPASSWORD: secrets.replicationPassword, PGSSLMODE: 'require' },
              stdio: 'inherit',
            },
          );
          p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_basebackup exit ${code}`))));
        }),
    );
    rows.push([
      'pg_basebackup (plain, uncompressed, from the primary)',
      `${formatMs(baseMs)} (${mbps(size, baseMs)})`,
      'what the backup would cost without pgBackRest',
    ]);
  } finally {
    await rm(base, { recursive: true, force: true });
  }

  progress('archive latency under write load');
  const lat: number[] = [];
  let writing = true;
  let connected!: () => void;
  const writerReady = new Promise<void>((r) => (connected = r));
  const writer = (async () => {
    const w = new pg.Client({ connectionString: await withPassword(status.endpoints.primary, c.stateDir) });
    w.on('error', () => {});
    await w.connect();
    connected();
    let i = MB * 1024 + 1;
    while (writing) {
      await w.query('INSERT INTO payload SELECT g, repeat(md5(g::text), 30) FROM generate_series($1::bigint, $2::bigint) g', [i, i + 999]);
      i += 1000;
    }
    await w.end();
  })();
  await writerReady;
  // Each switch follows a write of its own, so there is always a segment to switch away from.
  for (let k = 0; k < 10; k++) {
    await db.query('INSERT INTO payload VALUES ($1, $2)', [-(k + 2), 'switch marker']);
    const segment = (await db.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')).rows[0]!.w;
    const t = performance.now();
    for (;;) {
      const last = (await db.query<{ l: string | null }>('SELECT last_archived_wal AS l FROM pg_stat_archiver')).rows[0]!.l;
      if (last !== null && last.slice(8) >= segment.slice(8)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    lat.push(performance.now() - t);
  }
  writing = false;
  await writer;
  rows.push([
    'segment switched → in the repository, under writes',
    `p50 ${formatMs(percentile(lat, 50))}, max ${formatMs(Math.max(...lat))}`,
    '10 switches while a writer inserts 1 MB batches',
  ]);

  progress('point-in-time recovery of the whole cluster');
  const target = (await db.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]!.t;
  await db.query('INSERT INTO payload VALUES (-1, $1)', ['after the target']);
  await db.end();
  const [, pitrMs] = await timed(() => must(['local', 'db', 'restore', '--to', target.toISOString(), '--yes', '--timeout', '1800']));
  rows.push(['db restore --to <time> (whole cluster)', formatMs(pitrMs), 'safety backup, restore, replay, 2 replicas copied, new full backup']);
  console.log(table(['MEASURE', 'RESULT', 'NOTE'], rows));
} finally {
  await c.cleanup();
}
