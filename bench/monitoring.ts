// Monitoring benchmark: what Prometheus beside a local cluster costs and how fast it tells. A test
// cluster (127.0.233.x, Prometheus on 19093) is started without and with `--with-monitoring`; measured:
// the start time each way, Prometheus's resident memory and CPU while the cluster idles (BENCH_MON_IDLE_S,
// default 60 s) and the time from stopping a replica's Patroni to GardenOSPostgresMemberDown firing (its
// `for` is 30 s, so ~30 s plus a scrape and an evaluation is the floor), over BENCH_MON_RUNS stops (default 3).
//   npm run bench:monitoring
import { readFile } from 'node:fs/promises';
import { table } from '../src/cli/output.ts';
import { openLocalCluster } from '../src/local/cluster.ts';
import { waitFor } from '../src/util/wait.ts';
import { makeTestCluster } from '../test/helpers/local.ts';
import { formatMs, percentile } from './stats.ts';

const IDLE_S = Number(process.env.BENCH_MON_IDLE_S ?? 60);
const RUNS = Number(process.env.BENCH_MON_RUNS ?? 3);
const PORT = 19093;
const rows: string[][] = [];
const progress = (what: string) => process.stderr.write(`bench:monitoring ${new Date().toISOString().slice(11, 19)} ${what}\n`);
const c = await makeTestCluster('bench-mon', 233, `monitoring: { port: ${PORT} }`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void c.cleanup().finally(() => process.exit(130)));
try {
  progress('local up without monitoring');
  let t = performance.now();
  if ((await c.cli(['local', 'up'])).code !== 0) throw new Error('local up failed');
  const without = performance.now() - t;
  await c.cli(['local', 'down']);
  progress('local up --with-monitoring (from stopped, as the first run was from nothing)');
  t = performance.now();
  const up = await c.cli(['local', 'up', '--with-monitoring']);
  if (up.code !== 0) throw new Error(`local up --with-monitoring failed: ${up.stderr}`);
  const withMon = performance.now() - t;
  rows.push(['local up (first, from nothing)', formatMs(without), 'without monitoring']);
  rows.push(['local up --with-monitoring (from stopped)', formatMs(withMon), 'Prometheus ready included']);

  const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
  const pid = (await local.supervisor.pid(local.specs.monitoring))!;
  const ticks = async () => (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
  progress(`idling ${IDLE_S} s`);
  const before = await ticks();
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const cpu = ((await ticks()) - before) / 100 / IDLE_S;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  rows.push(['Prometheus CPU while the cluster idles', `${(cpu * 100).toFixed(1)} % of a core`, `8 targets every ${local.config.monitoring.scrapeIntervalSeconds} s, ${IDLE_S} s`]);
  rows.push(['Prometheus resident memory', `${rss.toFixed(0)} MiB`, '']);

  const alerts = async () => ((await (await fetch(`http://${c.prefix}.10:${PORT}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } }).data.alerts;
  const latencies: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[] };
    const replica = status.members.find((m) => m.role !== 'leader')!.name;
    progress(`stopping ${replica} (${i + 1}/${RUNS})`);
    const stoppedAt = performance.now();
    await local.supervisor.stop(local.specs.patroni.find((s) => s.id === `patroni-${replica}`)!, { graceMs: 30_000 });
    await waitFor('the alert', async () => (await alerts()).some((a) => a.state === 'firing' && a.labels.alertname === 'GardenOSPostgresMemberDown' && a.labels.member === replica) || undefined, { timeoutMs: 180_000, intervalMs: 200 });
    latencies.push(performance.now() - stoppedAt);
    if ((await c.cli(['local', 'up'])).code !== 0) throw new Error('local up failed');
    await waitFor('no alert', async () => (await alerts()).every((a) => a.state !== 'firing') || undefined, { timeoutMs: 180_000, intervalMs: 500 });
  }
  rows.push(['member stopped → GardenOSPostgresMemberDown firing', `p50 ${formatMs(percentile(latencies, 50))}, max ${formatMs(Math.max(...latencies))}`, `${RUNS} runs; the rule's for: 30s`]);
  console.log(table(['MEASURE', 'RESULT', 'NOTE'], rows));
} finally {
  await c.cleanup();
}
