// Monitoring on a real local cluster (127.0.232.x; Prometheus on port 19090, away from a Debian
// Prometheus that may hold 9090): `local up --with-monitoring` starts Debian's Prometheus with the
// rendered scrape configuration and alert rules; every component is scraped for real (etcd over mutual
// TLS, Patroni over TLS, HAProxy's exporter behind its stats credentials, the router, which also reports
// every certificate's expiry); stopping a
// PostgreSQL member and then an etcd member fires the alerts that name them within their `for` windows,
// and `local up` bringing them back resolves them.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openLocalCluster } from '../../src/local/cluster.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';

const PORT = 19090;
const ALERTMANAGER = 19093;

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

  before(async () => {
    c = await makeTestCluster('it-mon', 232, `monitoring: { port: ${PORT}, scrapeIntervalSeconds: 1, exporterPorts: { postgres: 19187, node: 19100 }, alertmanager: { port: ${ALERTMANAGER} } }`);
    const up = await c.cli(['local', 'up', '--with-monitoring', '--with-backups', '--json']);
    assert.equal(up.code, 0, up.stderr);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('scrapes every component for real: etcd over mutual TLS, Patroni, HAProxy behind its credentials, the router', async () => {
    type Target = { labels: { job: string; instance: string }; health: string; lastError: string };
    const targets = await waitFor('every target to be scraped', async () => {
      const t = (await get<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets;
      const down = t.filter((x) => x.health !== 'up');
      if (t.length !== 12 || down.length) throw new Error(`${t.length} targets; not up: ${down.map((x) => `${x.labels.job} ${x.labels.instance} ${x.health} ${x.lastError}`).join('; ')}`);
      return t;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    assert.deepEqual(targets.map((t) => t.labels.job).sort(), ['etcd', 'etcd', 'etcd', 'haproxy', 'node', 'patroni', 'patroni', 'patroni', 'postgres', 'postgres', 'postgres', 'router']);
    // What they say agrees with the cluster: one leader, the router routing to it, HAProxy with one primary server up.
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string; host: string }[]; endpoints: { prometheus?: string }; problems: string[] };
    assert.equal(status.endpoints.prometheus, `http://${c.prefix}.10:${PORT}/`);
    assert.deepEqual(status.problems, []);
    const leader = status.members.find((m) => m.role === 'leader')!.name;
    const value = async (q: string) => (await get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`)).result;
    await waitFor('the leader in the metrics', async () => (await value('patroni_primary == 1')).map((r) => r.metric.member).join() === leader || undefined, { timeoutMs: 30_000, intervalMs: 500 });
    assert.deepEqual((await value('gardenos_router_primary == 1')).map((r) => r.metric.member), [leader]);
    assert.equal((await value('haproxy_backend_active_servers{proxy="postgres-primary"}'))[0]?.value[1], '1');
    // Every certificate of the cluster, as the router reads it: the CA, GardenOS's client, three etcd and three PostgreSQL members'.
    const certs = await value('gardenos_certificate_expiry_timestamp_seconds');
    assert.equal(certs.length, 8, certs.map((r) => r.metric.file).join(', '));
    for (const r of certs) assert.ok(Number(r.value[1]) > Date.now() / 1000 + 365 * 86400, `${r.metric.subject} expires in more than a year`);
    // postgres-exporter logs in to every member as its pg_monitor role (TLS checked against the CA) and reads its statistics.
    await waitFor('postgres-exporter connected to every member', async () => {
      const ups = await value('pg_up');
      if (ups.map((r) => `${r.metric.member}=${r.value[1]}`).sort().join() !== 'node1=1,node2=1,node3=1') throw new Error(ups.map((r) => `${r.metric.member}=${r.value[1]}`).join() || 'no pg_up');
      return true;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok((await value(`pg_stat_database_xact_commit{datname="postgres", member="${leader}"}`)).length === 1, 'the leader\'s commits are counted');
    // The role logs in with the password among the secrets, reads statistics, and may do nothing it was not given.
    const secrets = JSON.parse(await readFile(join(c.stateDir, 'secrets', 'passwords.json'), 'utf8')) as { monitorPassword: string };
    const monitor = new pg.Client({ host: status.members.find((m) => m.name === leader)!.host, port: 5432, user: 'gardenos_monitor', password: secrets.monitorPassword, database: 'postgres', ssl: { ca: await readFile(join(c.stateDir, 'pki', 'ca.crt'), 'utf8') } });
    await monitor.connect();
    try {
      const role = (await monitor.query<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; monitor: boolean }>("SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role('pg_monitor', 'MEMBER') AS monitor FROM pg_roles WHERE rolname = current_user")).rows[0];
      assert.deepEqual(role, { rolsuper: false, rolcreaterole: false, rolcreatedb: false, monitor: true });
      await assert.rejects(monitor.query('CREATE TABLE monitor_may_not (i int)'), /permission denied/);
    } finally {
      await monitor.end();
    }
    // node-exporter: the filesystem that holds the state directory, and the backup scheduler's metrics.
    const fs = await value('node_filesystem_size_bytes');
    assert.ok(fs.length >= 1 && fs.every((r) => Number(r.value[1]) > 0), 'node-exporter reports filesystems');
    const lastBackup = await waitFor('the backup metrics', async () => (await value('gardenos_backup_last_success_timestamp_seconds{type="full"}'))[0], { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(Math.abs(Number(lastBackup.value[1]) - Date.now() / 1000) < 600, `the first full backup was just taken: ${lastBackup.value[1]}`);
    assert.deepEqual(await firing(), [], 'a healthy cluster fires nothing');
  });

  it('fires the alert naming a stopped PostgreSQL member, and quorum-at-risk for a stopped etcd member; both resolve when `local up` brings them back', async () => {
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[] };
    const replica = status.members.find((m) => m.role !== 'leader')!.name;
    await local.supervisor.stop(local.specs.patroni.find((s) => s.id === `patroni-${replica}`)!, { graceMs: 30_000 });
    const etcdMember = local.topology.etcd[2]!.name;
    await local.supervisor.stop(local.specs.etcd.find((s) => s.id === `etcd-${etcdMember}`)!, { graceMs: 10_000 });
    const fired = await waitFor('the alerts to fire', async () => {
      const a = await firing();
      const names = a.map((x) => `${x.labels.alertname}${x.labels.member ? `/${x.labels.member}` : ''}`).sort();
      const want = [`GardenOSEtcdMemberDown/${etcdMember}`, 'GardenOSEtcdQuorumAtRisk', `GardenOSPostgresMemberDown/${replica}`];
      if (!want.every((w) => names.includes(w))) throw new Error(`firing: ${names.join(', ') || 'nothing'}`);
      return names;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    assert.ok(!fired.includes('GardenOSNoLeader'), 'the leader stayed: no leader alert');
    // Prometheus sent them to Alertmanager, which holds them for its receivers.
    await waitFor('Alertmanager to hold the alert', async () => {
      const held = (await (await fetch(`http://${c.prefix}.10:${ALERTMANAGER}/api/v2/alerts`)).json()) as { labels: Record<string, string> }[];
      if (!held.some((a) => a.labels.alertname === 'GardenOSPostgresMemberDown' && a.labels.member === replica)) throw new Error(held.map((a) => a.labels.alertname).join(', ') || 'none');
      return true;
    }, { timeoutMs: 60_000, intervalMs: 1000 });

    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    await waitFor('the alerts to resolve', async () => {
      const a = await firing();
      if (a.length) throw new Error(`still firing: ${a.map((x) => x.labels.alertname).join(', ')}`);
      return true;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
  });
});
