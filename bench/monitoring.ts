// Monitoring benchmark: what Prometheus and its exporters beside a local cluster cost and how fast they
// tell. A test cluster (127.0.233.x, Prometheus on 19093) is started without and with `--with-monitoring`;
// measured: the start time each way; the resident memory and CPU of Prometheus, the three postgres-exporters,
// node-exporter and Alertmanager while the cluster idles and under write load (BENCH_MON_IDLE_S each,
// default 60 s); the time from stopping a replica's Patroni to GardenOSPostgresMemberDown firing (its `for`
// is 30 s, so ~30 s plus a scrape and an evaluation is the floor), over BENCH_MON_RUNS stops (default 3);
// and the dashboard in headless Chromium: first contentful paint, first data, and how long after the router's
// move the page shows the new leader, over BENCH_MON_SWITCHOVERS switchovers (default 5; goal ≤ 1 s).
//   npm run bench:monitoring
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import puppeteer from 'puppeteer-core';
import { table } from '../src/cli/output.ts';
import { openLocalCluster } from '../src/local/cluster.ts';
import { waitFor } from '../src/util/wait.ts';
import { DIST_CLI, makeTestCluster } from '../test/helpers/local.ts';
import { formatMs, percentile } from './stats.ts';

const IDLE_S = Number(process.env.BENCH_MON_IDLE_S ?? 60);
const RUNS = Number(process.env.BENCH_MON_RUNS ?? 3);
const SWITCHOVERS = Number(process.env.BENCH_MON_SWITCHOVERS ?? 5);
const PORT = 19093;
const DASHBOARD = 17733;
const rows: string[][] = [];
const progress = (what: string) => process.stderr.write(`bench:monitoring ${new Date().toISOString().slice(11, 19)} ${what}\n`);
const c = await makeTestCluster(
  'bench-mon',
  233,
  `monitoring: { port: ${PORT}, exporterPorts: { postgres: 19287, node: 19200 }, alertmanager: { port: 19294 } }`,
);
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
  const specs = [local.specs.monitoring, ...local.specs.exporters];
  const pids = await Promise.all(specs.map(async (s) => (await local.supervisor.pid(s))!));
  const ticks = async (pid: number) =>
    (await readFile(`/proc/${pid}/stat`, 'utf8'))
      .split(') ')[1]!
      .split(' ')
      .slice(11, 13)
      .reduce((a, b) => a + Number(b), 0);
  const rssMiB = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  /** CPU (share of one core) and memory of each monitoring process over `seconds`, while `during` runs. */
  const cost = async (seconds: number, during: (signal: AbortSignal) => Promise<unknown> = async () => {}) => {
    const before = await Promise.all(pids.map(ticks));
    const stop = new AbortController();
    const work = during(stop.signal);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    stop.abort();
    const result = await work;
    const after = await Promise.all(pids.map(ticks));
    const rss = await Promise.all(pids.map(rssMiB));
    return { cpu: pids.map((_, i) => (after[i]! - before[i]!) / 100 / seconds), rss, result };
  };
  const costRows = (label: string, r: { cpu: number[]; rss: number[] }) =>
    specs
      .map((s, i) => [`${s.id} ${label}`, `${(r.cpu[i]! * 100).toFixed(1)} % of a core, ${r.rss[i]!.toFixed(0)} MiB`, ''])
      .concat([
        [
          `all monitoring ${label}`,
          `${(r.cpu.reduce((a, b) => a + b, 0) * 100).toFixed(1)} % of a core, ${r.rss.reduce((a, b) => a + b, 0).toFixed(0)} MiB`,
          `${specs.length} processes, every ${local.config.monitoring.scrapeIntervalSeconds} s`,
        ],
      ]);
  progress(`idling ${IDLE_S} s`);
  rows.push(...costRows('(idle)', await cost(IDLE_S)));
  progress(`writing for ${IDLE_S} s`);
  const loaded = await cost(IDLE_S, async (signal) => {
    // One writer, one row per transaction through the primary endpoint, as fast as it commits.
    const secrets = JSON.parse(await readFile(`${c.stateDir}/secrets/passwords.json`, 'utf8')) as { superuserPassword: string };
    const client = new pg.Client({
      host: `${c.prefix}.10`,
      port: local.config.haproxy.ports.primary,
      user: 'postgres',
      password: secrets.superuserPassword,
      database: 'postgres',
      ssl: { ca: await readFile(local.layout.ca.cert, 'utf8') },
    });
    await client.connect();
    await client.query('CREATE TABLE IF NOT EXISTS bench_mon (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())');
    let n = 0;
    while (!signal.aborted) {
      await client.query('INSERT INTO bench_mon DEFAULT VALUES');
      n++;
    }
    await client.end();
    return n;
  });
  rows.push(...costRows(`(${Math.round((loaded.result as number) / IDLE_S)} commits/s)`, loaded));

  const alerts = async () =>
    ((await (await fetch(`http://${c.prefix}.10:${PORT}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } })
      .data.alerts;
  const latencies: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[] };
    const replica = status.members.find((m) => m.role !== 'leader')!.name;
    progress(`stopping ${replica} (${i + 1}/${RUNS})`);
    const stoppedAt = performance.now();
    await local.supervisor.stop(local.specs.patroni.find((s) => s.id === `patroni-${replica}`)!, { graceMs: 30_000 });
    await waitFor(
      'the alert',
      async () =>
        (await alerts()).some((a) => a.state === 'firing' && a.labels.alertname === 'GardenOSPostgresMemberDown' && a.labels.member === replica) || undefined,
      { timeoutMs: 180_000, intervalMs: 200 },
    );
    latencies.push(performance.now() - stoppedAt);
    if ((await c.cli(['local', 'up'])).code !== 0) throw new Error('local up failed');
    await waitFor('no alert', async () => (await alerts()).every((a) => a.state !== 'firing') || undefined, { timeoutMs: 180_000, intervalMs: 500 });
  }
  rows.push([
    'member stopped → GardenOSPostgresMemberDown firing',
    `p50 ${formatMs(percentile(latencies, 50))}, max ${formatMs(Math.max(...latencies))}`,
    `${RUNS} runs; the rule's for: 30s`,
  ]);

  progress('the dashboard in headless Chromium');
  const dashboard = spawn(
    process.execPath,
    [DIST_CLI, 'local', '-c', c.configFile, '--state-dir', c.stateDir, 'dashboard', '--address', `${c.prefix}.10`, '--port', String(DASHBOARD)],
    { stdio: 'ignore' },
  );
  const browser = await puppeteer.launch({
    executablePath: '/usr/lib/chromium/chromium-headless-shell',
    headless: 'shell',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const url = `http://${c.prefix}.10:${DASHBOARD}/`;
    await waitFor('the dashboard', async () => (await fetch(`${url}healthz`).catch(() => undefined))?.ok || undefined, { timeoutMs: 30_000, intervalMs: 100 });
    const page = await browser.newPage();
    const opened = Date.now();
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction("document.getElementById('primary-route')?.textContent.startsWith('→')", { timeout: 30_000 });
    const firstData = Date.now() - opened;
    const fcp = (await page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")) as number;
    rows.push(['dashboard: first contentful paint', formatMs(fcp), 'headless Chromium, loopback']);
    rows.push(['dashboard: page opened → members and routes shown', formatMs(firstData), 'includes the first full status']);
    // Every change of the primary route as the page saw it, stamped in the page.
    await page.evaluate(
      `window.moves = []; new MutationObserver(() => window.moves.push({ text: document.getElementById('primary-route').textContent, at: Date.now() })).observe(document.getElementById('primary-route'), { childList: true, characterData: true, subtree: true })`,
    );
    const lags: number[] = [];
    for (let i = 0; i < SWITCHOVERS; i++) {
      progress(`switchover ${i + 1}/${SWITCHOVERS}`);
      await waitFor(
        'a healthy cluster before the switchover',
        async () => {
          const st = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { problems: string[] };
          return st.problems.length === 0 || undefined;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      const routerStatus = async () =>
        (await (await fetch(`http://${c.prefix}.10:${local.config.router.port}/status`)).json()) as { primary: { name: string } | null; lastChangeAt: string };
      const old = (await routerStatus()).primary?.name;
      const sw = await c.cli(['local', 'db', 'switchover', '--yes']);
      if (sw.code !== 0) throw new Error(`switchover failed: ${sw.stderr}`);
      const router = await waitFor(
        'the router to route the new leader',
        async () => {
          const r = await routerStatus();
          return r.primary && r.primary.name !== old ? r : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      const seen = await waitFor(
        'the page to show the new leader',
        async () => {
          const moves = (await page.evaluate('window.moves')) as { text: string; at: number }[];
          return moves.find((m) => m.text === `→ ${router.primary?.name}` && m.at >= Date.parse(router.lastChangeAt) - 1000);
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      lags.push(seen.at - Date.parse(router.lastChangeAt));
      await page.evaluate('window.moves = []');
    }
    rows.push([
      'dashboard: router moved → page shows the new leader',
      `p50 ${formatMs(percentile(lags, 50))}, max ${formatMs(Math.max(...lags))}`,
      `${SWITCHOVERS} switchovers; goal ≤ 1 s`,
    ]);
  } finally {
    await browser.close();
    dashboard.kill('SIGTERM');
  }
} finally {
  // Whatever was measured, even when a later step failed.
  if (rows.length) console.log(table(['MEASURE', 'RESULT', 'NOTE'], rows));
  await c.cleanup();
}
