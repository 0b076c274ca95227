// GardenOS benchmarks on the local cluster; prints a table. Not tests: numbers
// are measured and reported, never asserted.
//   npm run bench                 (BENCH_RUNS=3 cold starts, BENCH_STATUS=20 status and doctor calls)
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { makeTestCluster, withPassword } from '../test/helpers/local.ts';
import { table } from '../src/cli/output.ts';
import { formatMs as fmt, percentile as pct } from './stats.ts';

const DIST_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const runs = Number(process.env.BENCH_RUNS ?? 3);
const statusRuns = Number(process.env.BENCH_STATUS ?? 20);

function timed(args: string[]): Promise<{ ms: number; code: number; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [DIST_CLI, ...args], { maxBuffer: 16 << 20, timeout: 300_000 }, (err, stdout) => {
      resolve({ ms: performance.now() - t0, code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

const rows: string[][] = [];
const upTimes: number[] = [];
const statusTimes: number[] = [];
const statusWithConfigTimes: number[] = [];
const doctorTimes: number[] = [];
const halfStartedTimes: number[] = [];
const frozenTimes: number[] = [];
/** status on a cluster whose Patroni members are in `state` (a status that answers at all, degraded: exit 2). */
async function statusWhile(times: number[]): Promise<void> {
  for (let j = 0; j < statusRuns; j++) {
    const s = await timed(['local', '--state-dir', cluster.stateDir, 'status', '--json']);
    if (s.code !== 2) throw new Error(`status exit ${s.code} on a degraded cluster`);
    times.push(s.ms);
  }
}
const patroniPids = async () =>
  Promise.all([1, 2, 3].map(async (i) => Number((await readFile(`${cluster.stateDir}/pids/patroni-node${i}.pid`, 'utf8')).trim())));
const cluster = await makeTestCluster('bench', 221);
const local = (verb: string, ...rest: string[]) => ['local', '-c', cluster.configFile, '--state-dir', cluster.stateDir, verb, ...rest];
try {
  for (let i = 0; i < runs; i++) {
    // From an empty state directory to a write acknowledged through HAProxy with a synchronous standby.
    const t0 = performance.now();
    const up = await timed(local('up', '--json'));
    if (up.code !== 0) throw new Error(`local up failed (exit ${up.code})`);
    const { status } = JSON.parse(up.stdout) as { status: { endpoints: { primary: string } } };
    const client = new pg.Client({ connectionString: await withPassword(status.endpoints.primary, cluster.stateDir) });
    await client.connect();
    const r = await client.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state = 'sync'");
    await client.query('CREATE TABLE IF NOT EXISTS bench (t timestamptz)');
    await client.query('INSERT INTO bench VALUES (now())');
    await client.end();
    if (r.rows[0].n !== 1) throw new Error('no synchronous standby');
    upTimes.push(performance.now() - t0);
    process.stderr.write(`cold start ${i + 1}/${runs}: ${fmt(upTimes.at(-1)!)}\n`);
    if (i === runs - 1) {
      for (let j = 0; j < statusRuns; j++) {
        // As after `gardenos local up`: the cluster's own record, no config file to parse.
        const s = await timed(['local', '--state-dir', cluster.stateDir, 'status', '--json']);
        if (s.code !== 0) throw new Error(`status exit ${s.code}`);
        statusTimes.push(s.ms);
        const w = await timed(local('status', '--json'));
        if (w.code !== 0) throw new Error(`status exit ${w.code}`);
        statusWithConfigTimes.push(w.ms);
        const doc = await timed(['local', '--state-dir', cluster.stateDir, 'doctor', '--json']);
        if (doc.code !== 0) throw new Error(`doctor exit ${doc.code}: ${doc.stdout}`);
        doctorTimes.push(doc.ms);
      }
      // Frozen members (SIGSTOP): their ports accept connections that never answer, so each
      // probe runs to its deadline. Then half-started: etcd, HAProxy and the router up, every
      // Patroni gone (as when a missing module stops them).
      const pids = await patroniPids();
      for (const p of pids) process.kill(p, 'SIGSTOP');
      try {
        await statusWhile(frozenTimes);
      } finally {
        for (const p of pids) process.kill(p, 'SIGCONT');
      }
      for (const p of pids) process.kill(p, 'SIGKILL');
      await statusWhile(halfStartedTimes);
    }
    const d = await timed(local('destroy', '--yes'));
    if (d.code !== 0) throw new Error('destroy failed');
  }
} finally {
  await cluster.cleanup();
}

rows.push([
  'local up: empty state → write via HAProxy with sync standby',
  String(runs),
  fmt(pct(upTimes, 50)),
  fmt(pct(upTimes, 95)),
  fmt(Math.max(...upTimes)),
  '≤ 30 s',
]);
rows.push([
  'local status --json (wall, whole process)',
  String(statusRuns),
  fmt(pct(statusTimes, 50)),
  fmt(pct(statusTimes, 95)),
  fmt(Math.max(...statusTimes)),
  '≤ 300 ms',
]);
rows.push([
  'local status --json -c gardenos.yaml (parses and validates the file)',
  String(statusRuns),
  fmt(pct(statusWithConfigTimes, 50)),
  fmt(pct(statusWithConfigTimes, 95)),
  fmt(Math.max(...statusWithConfigTimes)),
  '≤ 300 ms',
]);
rows.push([
  'local status --json, half-started (etcd up, every Patroni gone)',
  String(statusRuns),
  fmt(pct(halfStartedTimes, 50)),
  fmt(pct(halfStartedTimes, 95)),
  fmt(Math.max(...halfStartedTimes)),
  '≤ 300 ms',
]);
rows.push([
  'local status --json, every Patroni frozen (probes run to their 1.5 s deadline)',
  String(statusRuns),
  fmt(pct(frozenTimes, 50)),
  fmt(pct(frozenTimes, 95)),
  fmt(Math.max(...frozenTimes)),
  '',
]);
rows.push([
  'local doctor --json: every check (wall, whole process)',
  String(statusRuns),
  fmt(pct(doctorTimes, 50)),
  fmt(pct(doctorTimes, 95)),
  fmt(Math.max(...doctorTimes)),
  '≤ 2 s',
]);
process.stdout.write(`\n${table(['BENCHMARK', 'N', 'P50', 'P95', 'MAX', 'GOAL'], rows)}\n`);
