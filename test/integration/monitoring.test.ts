// Monitoring on a real local cluster (127.0.232.x; Prometheus on port 19090, away from a Debian
// Prometheus that may hold 9090): `local up --with-monitoring` starts Debian's Prometheus with the
// rendered scrape configuration and alert rules; every component is scraped for real (etcd over mutual
// TLS, Patroni over TLS, HAProxy's exporter behind its stats credentials, the router, which also reports
// every certificate's expiry); stopping a
// PostgreSQL member and then an etcd member fires the alerts that name them within their `for` windows,
// and `local up` bringing them back resolves them. The dashboard (`local dashboard`) is driven in headless
// Chromium from Debian's packages: the leader shown, moved after a switchover, the stopped member's alert
// on the page; axe-core's WCAG 2 A/AA rules pass; screenshots saved (GARDENOS_SCREENSHOTS=docs/images
// writes the ones the docs use).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { openLocalCluster } from '../../src/local/cluster.ts';
import { grafanaQueries } from '../../src/render/grafana.ts';
import { waitFor } from '../../src/util/wait.ts';
import { CLI, makeTestCluster, type TestCluster } from '../helpers/local.ts';

const PORT = 19090;
const ALERTMANAGER = 19093;
const DASHBOARD = 17732;
const CHROMIUM = '/usr/lib/chromium/chromium-headless-shell';

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

describe('monitoring: Prometheus beside a real local cluster', { timeout: 600_000 }, () => {
  let c: TestCluster;
  const api = (path: string) => `http://${c.prefix}.10:${PORT}${path}`;
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(api(path));
    assert.equal(r.status, 200, `${path}: ${r.status}`);
    return ((await r.json()) as { data: T }).data;
  };
  const firing = async () => (await get<{ alerts: Alert[] }>('/api/v1/alerts')).alerts.filter((a) => a.state === 'firing');

  let dashboard: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let shots: string;
  const text = (selector: string) => page.$eval(selector, (e) => e.textContent ?? '');

  before(async () => {
    c = await makeTestCluster(
      'it-mon',
      232,
      `monitoring: { port: ${PORT}, scrapeIntervalSeconds: 1, exporterPorts: { postgres: 19187, node: 19100 }, alertmanager: { port: ${ALERTMANAGER} } }`,
    );
    const up = await c.cli(['local', 'up', '--with-monitoring', '--with-backups', '--json']);
    assert.equal(up.code, 0, up.stderr);
    shots = process.env.GARDENOS_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), 'gardenos-shots-')));
    await mkdir(shots, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    dashboard?.kill('SIGTERM');
    await c?.cleanup();
    // Screenshots are kept only where GARDENOS_SCREENSHOTS asked for them (the docs' images).
    if (!process.env.GARDENOS_SCREENSHOTS && shots) await rm(shots, { recursive: true, force: true });
  });

  it('scrapes every component for real: etcd over mutual TLS, Patroni, HAProxy behind its credentials, the router', async () => {
    type Target = { labels: { job: string; instance: string }; health: string; lastError: string };
    const targets = await waitFor(
      'every target to be scraped',
      async () => {
        const t = (await get<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets;
        const down = t.filter((x) => x.health !== 'up');
        if (t.length !== 12 || down.length)
          throw new Error(`${t.length} targets; not up: ${down.map((x) => `${x.labels.job} ${x.labels.instance} ${x.health} ${x.lastError}`).join('; ')}`);
        return t;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.deepEqual(targets.map((t) => t.labels.job).sort(), [
      'etcd',
      'etcd',
      'etcd',
      'haproxy',
      'node',
      'patroni',
      'patroni',
      'patroni',
      'postgres',
      'postgres',
      'postgres',
      'router',
    ]);
    // What they say agrees with the cluster: one leader, the router routing to it, HAProxy with one primary server up.
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as {
      members: { name: string; role: string; host: string }[];
      endpoints: { prometheus?: string };
      problems: string[];
    };
    assert.equal(status.endpoints.prometheus, `http://${c.prefix}.10:${PORT}/`);
    assert.deepEqual(status.problems, []);
    const leader = status.members.find((m) => m.role === 'leader')!.name;
    const value = async (q: string) =>
      (await get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`)).result;
    await waitFor('the leader in the metrics', async () => (await value('patroni_primary == 1')).map((r) => r.metric.member).join() === leader || undefined, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    assert.deepEqual(
      (await value('gardenos_router_primary == 1')).map((r) => r.metric.member),
      [leader],
    );
    assert.equal((await value('haproxy_backend_active_servers{proxy="postgres-primary"}'))[0]?.value[1], '1');
    // Every certificate of the cluster, as the router reads it: the CA, GardenOS's client, three etcd and three PostgreSQL members'.
    const certs = await value('gardenos_certificate_expiry_timestamp_seconds');
    assert.equal(certs.length, 8, certs.map((r) => r.metric.file).join(', '));
    for (const r of certs) assert.ok(Number(r.value[1]) > Date.now() / 1000 + 365 * 86400, `${r.metric.subject} expires in more than a year`);
    // postgres-exporter logs in to every member as its pg_monitor role (TLS checked against the CA) and reads its statistics.
    await waitFor(
      'postgres-exporter connected to every member',
      async () => {
        const ups = await value('pg_up');
        if (
          ups
            .map((r) => `${r.metric.member}=${r.value[1]}`)
            .sort()
            .join() !== 'node1=1,node2=1,node3=1'
        )
          throw new Error(ups.map((r) => `${r.metric.member}=${r.value[1]}`).join() || 'no pg_up');
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.ok((await value(`pg_stat_database_xact_commit{datname="postgres", member="${leader}"}`)).length === 1, "the leader's commits are counted");
    // The role logs in with the password among the secrets, reads statistics, and may do nothing it was not given.
    const secrets = JSON.parse(await readFile(join(c.stateDir, 'secrets', 'passwords.json'), 'utf8')) as { monitorPassword: string };
    const monitor = new pg.Client({
      host: status.members.find((m) => m.name === leader)!.host,
      port: 5432,
      user: 'gardenos_monitor',
      password: secrets.monitorPassword,
      database: 'postgres',
      ssl: { ca: await readFile(join(c.stateDir, 'pki', 'ca.crt'), 'utf8') },
    });
    await monitor.connect();
    try {
      const role = (
        await monitor.query<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; monitor: boolean }>(
          "SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role('pg_monitor', 'MEMBER') AS monitor FROM pg_roles WHERE rolname = current_user",
        )
      ).rows[0];
      assert.deepEqual(role, { rolsuper: false, rolcreaterole: false, rolcreatedb: false, monitor: true });
      await assert.rejects(monitor.query('CREATE TABLE monitor_may_not (i int)'), /permission denied/);
    } finally {
      await monitor.end();
    }
    // node-exporter: the filesystem that holds the state directory, and the backup scheduler's metrics.
    const fs = await value('node_filesystem_size_bytes');
    assert.ok(fs.length >= 1 && fs.every((r) => Number(r.value[1]) > 0), 'node-exporter reports filesystems');
    const lastBackup = await waitFor('the backup metrics', async () => (await value('gardenos_backup_last_success_timestamp_seconds{type="full"}'))[0], {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    assert.ok(Math.abs(Number(lastBackup.value[1]) - Date.now() / 1000) < 600, `the first full backup was just taken: ${lastBackup.value[1]}`);
    assert.deepEqual(await firing(), [], 'a healthy cluster fires nothing');
    // The Grafana dashboard's queries (`gardenos render` writes it) answer on this Prometheus: every panel
    // but the firing alerts (none) has data.
    const config = (await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir })).config;
    await waitFor(
      'every Grafana panel to have data',
      async () => {
        const empty: string[] = [];
        for (const [title, queries] of Object.entries(grafanaQueries(config))) {
          if (title === 'Firing alerts') continue;
          for (const q of queries) if (!(await value(q.expr)).length) empty.push(`${title}: ${q.expr}`);
        }
        if (empty.length) throw new Error(`no data for ${empty.join('; ')}`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
  });

  it('the dashboard in headless Chromium: the members and routes, accessible (axe-core, WCAG 2 A/AA), and the new leader after a switchover', async () => {
    dashboard = spawn(
      process.execPath,
      [CLI, 'local', '-c', c.configFile, '--state-dir', c.stateDir, 'dashboard', '--address', `${c.prefix}.10`, '--port', String(DASHBOARD)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    dashboard.stdout!.on('data', (d: Buffer) => (output += d));
    dashboard.stderr!.on('data', (d: Buffer) => (output += d));
    const url = `http://${c.prefix}.10:${DASHBOARD}/`;
    await waitFor('the dashboard to listen', async () => output.includes(url) || undefined, { timeoutMs: 30_000, intervalMs: 100 }).catch((e: Error) => {
      throw new Error(`${e.message}; its output: ${output}`);
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: 'shell',
      args: ['--no-sandbox', '--disable-gpu'],
      defaultViewport: { width: 1280, height: 1000 },
    });
    page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url, { waitUntil: 'load' });

    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[] };
    const leader = status.members.find((m) => m.role === 'leader')!.name;
    await page.waitForFunction(`document.getElementById('primary-route')?.textContent === '→ ${leader}'`, { timeout: 30_000 });
    assert.equal(await page.$eval(`#members tr[data-member="${leader}"]`, (e) => e.getAttribute('data-role')), 'leader');
    assert.equal(await page.$$eval('#members tbody tr', (rows) => rows.length), 3);
    assert.match(await text('#connection'), /live/);
    // Prometheus's panels: no alert on a healthy cluster, and the charts drawn from its series.
    await page.waitForFunction("document.querySelectorAll('#commits-chart polyline').length === 1", { timeout: 30_000 });
    assert.match(await text('#prometheus-note'), /No alert/);
    assert.match(await text('#health'), /^healthy$/);
    await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });

    // Accessibility: axe-core's WCAG 2 A and AA rules (contrast, names, headings, landmarks, tables).
    // Evaluated through the DevTools protocol: the page's own CSP (no inline script) stays as it is.
    await page.evaluate(await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'));
    const axe = (await page.evaluate(
      "axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }).then((r) => ({ violations: r.violations.map((v) => v.id + ' (' + v.nodes.length + ')'), passes: r.passes.length }))",
    )) as { violations: string[]; passes: number };
    assert.deepEqual(axe.violations, [], 'WCAG 2 A/AA violations');
    assert.ok(axe.passes > 10, `axe checked the page (${axe.passes} rules passed)`);
    // A heading for the page and for every section; the tables name their columns.
    assert.equal(await page.$$eval('h1', (e) => e.length), 1);
    assert.equal(await page.$$eval('section', (s) => s.filter((x) => !x.querySelector('h2')).length), 0);

    // A switchover: the page shows the new leader (the router moves, the page follows within a tick or two).
    const sw = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
    assert.equal(sw.code, 0, sw.stderr);
    const after = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[] };
    const next = after.members.find((m) => m.role === 'leader')!.name;
    assert.notEqual(next, leader);
    await page.waitForFunction(`document.getElementById('primary-route')?.textContent === '→ ${next}'`, { timeout: 30_000 });
    assert.match(await text('#announce'), new RegExp(`moved from ${leader} to ${next}`));
    assert.match(await text('#decisions'), new RegExp(next));
    assert.deepEqual(errors, [], 'no script errors and no CSP violations in the page');
  });

  it('fires the alert naming a stopped PostgreSQL member, and quorum-at-risk for a stopped etcd member; both resolve when `local up` brings them back', async () => {
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[] };
    const replica = status.members.find((m) => m.role !== 'leader')!.name;
    await local.supervisor.stop(local.specs.patroni.find((s) => s.id === `patroni-${replica}`)!, { graceMs: 30_000 });
    const etcdMember = local.topology.etcd[2]!.name;
    await local.supervisor.stop(local.specs.etcd.find((s) => s.id === `etcd-${etcdMember}`)!, { graceMs: 10_000 });
    const fired = await waitFor(
      'the alerts to fire',
      async () => {
        const a = await firing();
        const names = a.map((x) => `${x.labels.alertname}${x.labels.member ? `/${x.labels.member}` : ''}`).sort();
        const want = [`GardenOSEtcdMemberDown/${etcdMember}`, 'GardenOSEtcdQuorumAtRisk', `GardenOSPostgresMemberDown/${replica}`];
        if (!want.every((w) => names.includes(w))) throw new Error(`firing: ${names.join(', ') || 'nothing'}`);
        return names;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    assert.ok(!fired.includes('GardenOSNoLeader'), 'the leader stayed: no leader alert');
    // The stopped member's postgres-exporter still answers its scrapes (it is not down; its PostgreSQL is).
    const q = async (expr: string) =>
      (await get<{ result: { value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result[0]?.value[1];
    await waitFor('the exporter to report its member down', async () => ((await q(`pg_up{member="${replica}"}`)) === '0' ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    assert.equal(await q(`up{job="postgres", member="${replica}"}`), '1', 'the exporter is scraped');
    // The dashboard lists it, naming the member, and no longer calls the cluster healthy.
    await page.waitForFunction(
      `document.querySelector('#alerts li[data-alert="GardenOSPostgresMemberDown"][data-member="${replica}"][data-state="firing"]') !== null`,
      { timeout: 60_000 },
    );
    assert.match(await text('#health'), /degraded/);
    await page.screenshot({ path: join(shots, 'dashboard-alert.png'), fullPage: true });
    // Prometheus sent them to Alertmanager, which holds them for its receivers.
    await waitFor(
      'Alertmanager to hold the alert',
      async () => {
        const held = (await (await fetch(`http://${c.prefix}.10:${ALERTMANAGER}/api/v2/alerts`)).json()) as { labels: Record<string, string> }[];
        if (!held.some((a) => a.labels.alertname === 'GardenOSPostgresMemberDown' && a.labels.member === replica))
          throw new Error(held.map((a) => a.labels.alertname).join(', ') || 'none');
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );

    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    await waitFor(
      'the alerts to resolve',
      async () => {
        const a = await firing();
        if (a.length) throw new Error(`still firing: ${a.map((x) => x.labels.alertname).join(', ')}`);
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  });
});
