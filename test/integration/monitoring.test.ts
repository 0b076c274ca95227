// Monitoring on a real local cluster (127.0.232.x; Prometheus on port 19090, away from a Debian
// Prometheus that may hold 9090): `local up --with-monitoring` starts Debian's Prometheus with the
// rendered scrape configuration and alert rules; every component is scraped for real (etcd over mutual
// TLS, Patroni over TLS, HAProxy's exporter behind its stats credentials, the router, which also reports
// every certificate's expiry); stopping a
// PostgreSQL member and then an etcd member fires the alerts that name them within their `for` windows,
// and `local up` bringing them back resolves them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openLocalCluster } from '../../src/local/cluster.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';

const PORT = 19090;

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
    c = await makeTestCluster('it-mon', 232, `monitoring: { port: ${PORT}, scrapeIntervalSeconds: 1 }`);
    const up = await c.cli(['local', 'up', '--with-monitoring', '--json']);
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
      if (t.length !== 8 || down.length) throw new Error(`${t.length} targets; not up: ${down.map((x) => `${x.labels.job} ${x.labels.instance} ${x.health} ${x.lastError}`).join('; ')}`);
      return t;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    assert.deepEqual(targets.map((t) => t.labels.job).sort(), ['etcd', 'etcd', 'etcd', 'haproxy', 'patroni', 'patroni', 'patroni', 'router']);
    // What they say agrees with the cluster: one leader, the router routing to it, HAProxy with one primary server up.
    const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as { members: { name: string; role: string }[]; endpoints: { prometheus?: string }; problems: string[] };
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

    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    await waitFor('the alerts to resolve', async () => {
      const a = await firing();
      if (a.length) throw new Error(`still firing: ${a.map((x) => x.labels.alertname).join(', ')}`);
      return true;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
  });
});
