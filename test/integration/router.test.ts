// The router against real etcd, Patroni and HAProxy (`gardenos local up` starts it).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { EtcdClient } from '../../src/clients/etcd.ts';
import { HaproxyClient } from '../../src/clients/haproxy.ts';
import { memberRunning, PatroniClient } from '../../src/clients/patroni.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';

describe('router: the primary port follows the Patroni leader', { timeout: 600_000 }, () => {
  let c: TestCluster;
  let status: LocalStatus;
  let haproxy: HaproxyClient;
  let etcd: EtcdClient;
  let api: (member: string) => PatroniClient;

  const address = (member: string) => `${c.prefix}.${10 + Number(member.replace('node', ''))}`;
  /** Servers of the primary backend that take traffic (not in maintenance, health up). */
  const primaryServers = async () => (await haproxy.stats()).filter((s) => s.proxy === 'postgres-primary' && s.status.startsWith('UP')).map((s) => s.server);
  const healthy = () =>
    waitFor(
      'a leader, a synchronous standby and every member running',
      async () => {
        const v = await api('node1')
          .cluster()
          .catch(() => api('node2').cluster());
        const leader = v.members.find((m) => m.role === 'leader' && memberRunning(m));
        const sync = v.members.find((m) => m.role === 'sync_standby' && memberRunning(m));
        return leader && sync && v.members.length === 3 && v.members.every(memberRunning) ? { leader: leader.name, sync: sync.name } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
  const switchover = async () => {
    // Patroni may refuse while its own etcd client finds a live member ("failed to write switchover key"): ask again.
    return waitFor(
      'Patroni to accept a switchover',
      async () => {
        const { leader, sync } = await healthy();
        const res = await api(leader).call('POST', '/switchover', { leader, candidate: sync });
        if (res.status !== 200) throw new Error(`${res.status}: ${res.body}`);
        return { from: leader, to: sync };
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  };
  const routedTo = (member: string) =>
    waitFor(
      `HAProxy routing writes to ${member} only`,
      async () => {
        const up = await primaryServers();
        return up.length === 1 && up[0] === member;
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    );

  before(async () => {
    c = await makeTestCluster('it-router', 213);
    const r = await c.cli(['local', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
    status = (JSON.parse(r.stdout) as { status: LocalStatus }).status;
    const s = c.stateDir;
    const secrets = JSON.parse(await readFile(`${s}/secrets/passwords.json`, 'utf8')) as { restApiPassword: string };
    api = (m) =>
      new PatroniClient(`https://${address(m)}:8008`, {
        caFile: `${s}/pki/ca.crt`,
        timeoutMs: 60_000,
        auth: { username: 'patroni', password: secrets.restApiPassword },
      });
    haproxy = new HaproxyClient(`${s}/haproxy/admin.sock`);
    etcd = new EtcdClient(
      [1, 2, 3].map((i) => `https://${c.prefix}.${10 + i}:2379`),
      { ca: `${s}/pki/ca.crt`, cert: `${s}/pki/gardenos-client.crt`, key: `${s}/pki/gardenos-client.key` },
      { resilient: true },
    );
  });
  after(async () => {
    etcd?.close();
    await c?.cleanup();
  });

  it('moves the primary port to the new leader on a switchover', async () => {
    const { to } = await switchover();
    await routedTo(to);
    const client = new pg.Client({ connectionString: await withPassword(status.endpoints.primary, c.stateDir) });
    await client.connect();
    try {
      const r = await client.query('SELECT host(inet_server_addr()) AS addr, pg_is_in_recovery() AS standby');
      assert.equal(r.rows[0].addr, address(to));
      assert.equal(r.rows[0].standby, false);
    } finally {
      await client.end();
    }
    const log = await readFile(`${c.stateDir}/logs/router.log`, 'utf8');
    assert.match(log, new RegExp(`"decision":"leader ${to} holds the lock and confirms on /primary`));
  });

  it('routes writes to nobody while there is no leader key, then to the confirmed leader', async () => {
    await healthy();
    const seen = new Set<string>();
    let maxUp = 0;
    const logFile = `${c.stateDir}/logs/router.log`;
    const logOffset = (await readFile(logFile, 'utf8')).length;
    // The router's own record of routing writes nowhere (a decision with no primary) since the deletion: Patroni
    // takes its key back within milliseconds, so the empty window can be shorter than one look at HAProxy.
    const routedNowhere = async () =>
      (await readFile(logFile, 'utf8'))
        .slice(logOffset)
        .split('\n')
        .some((l) => l.includes('"primary":null'));
    await etcd.delete('/service/it-router/leader');
    const deadline = Date.now() + 15_000;
    // Patroni 4 watches its key and may write it back before the router has read the scope at all: the key is
    // deleted again (for up to 3 s) until the router has seen it gone.
    const keepDeleting = Date.now() + 3000;
    // Watch HAProxy closely: an empty primary must appear, and never two primaries.
    while (Date.now() < deadline) {
      if (Date.now() < keepDeleting && !seen.has('nobody') && !(await routedNowhere())) await etcd.delete('/service/it-router/leader');
      const up = await primaryServers();
      maxUp = Math.max(maxUp, up.length);
      seen.add(up.join(',') || 'nobody');
      if (seen.has('nobody') && up.length === 1) break;
      if (up.length === 1 && (await routedNowhere())) break;
      await sleep(5);
    }
    assert.ok(seen.has('nobody') || (await routedNowhere()), `the primary port was never closed: saw ${[...seen].join(' | ')}`);
    assert.ok(maxUp <= 1, 'never two primaries');
    const { leader } = await healthy();
    await routedTo(leader);
  });

  it('loses no change while the etcd member it talks to restarts', async () => {
    for (const member of ['node1', 'node2', 'node3']) {
      await healthy();
      const pid = Number(await readFile(`${c.stateDir}/pids/etcd-${member}.pid`, 'utf8'));
      process.kill(pid, 'SIGKILL');
      const { to } = await switchover();
      await routedTo(to);
      const up = await c.cli(['local', 'up', '--json']);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual(
        (JSON.parse(up.stdout) as { changes: string[] }).changes.filter((x) => x.startsWith('started')).map((x) => x.split(' ')[1]),
        [`etcd-${member}`],
      );
    }
    const log = await readFile(`${c.stateDir}/logs/router.log`, 'utf8');
    assert.doesNotMatch(log, /BUG/);
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    const base = `http://${c.prefix}.10:8405`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /gardenos_router_leader_change_to_route_seconds_count [1-9]/);
    assert.match(metrics, /gardenos_router_routing_changes_total\{sink="haproxy"\} [1-9]/);
    assert.match(metrics, /gardenos_router_primary\{member="node\d"\} 1/);
  });
});
