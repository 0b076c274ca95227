import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Router, type RoutingLog } from '../../src/router/controller.ts';
import { DcsUnavailable, parseSnapshot, type DcsMember, type DcsSnapshot, type PatroniDcs } from '../../src/router/dcs.ts';
import { decidePrimary, decideReplicas, NOWHERE, type MemberProbe, type Route } from '../../src/router/decide.ts';
import { createMetrics } from '../../src/router/metrics.ts';
import type { RouteSink } from '../../src/router/sinks/types.ts';

const P = '/service/s/';
const member = (_name: string, ip: string, role = 'replica') =>
  JSON.stringify({
    conn_url: `postgres://${ip}:5432/postgres`,
    api_url: `https://${ip}:8008/patroni`,
    state: 'running',
    role,
    timeline: 3,
    xlog_location: 100,
  });

function snapshot(leader: string | null): DcsSnapshot {
  const kvs: Record<string, string> = {
    [`${P}initialize`]: '7123',
    [`${P}members/a`]: member('a', '10.0.0.1', 'master'),
    [`${P}members/b`]: member('b', '10.0.0.2'),
    [`${P}members/c`]: member('c', '10.0.0.3'),
  };
  if (leader) kvs[`${P}leader`] = leader;
  return parseSnapshot(P, '42', kvs);
}

function probe(primaries: string[], replicas: string[]): MemberProbe & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    primaryTimeline: async (m: DcsMember) => {
      calls.push(`primary ${m.name}`);
      return primaries.includes(m.name) ? 3 : null;
    },
    isHealthyReplica: async (m: DcsMember, lag: number) => {
      calls.push(`replica ${m.name} ${lag}`);
      return replicas.includes(m.name);
    },
  };
}

describe('router: DCS snapshot', () => {
  it("parses Patroni's keys: leader, members with API and connection addresses", () => {
    const s = snapshot('a');
    assert.equal(s.leader, 'a');
    assert.equal(s.initialized, true);
    assert.deepEqual(
      s.members.map((m) => [m.name, m.host, m.port, m.apiUrl, m.role]),
      [
        ['a', '10.0.0.1', 5432, 'https://10.0.0.1:8008', 'master'],
        ['b', '10.0.0.2', 5432, 'https://10.0.0.2:8008', 'replica'],
        ['c', '10.0.0.3', 5432, 'https://10.0.0.3:8008', 'replica'],
      ],
    );
  });

  it('skips a malformed member value instead of failing', () => {
    const s = parseSnapshot(P, '1', { [`${P}members/x`]: '{not json', [`${P}members/y`]: member('y', '10.0.0.9') });
    assert.deepEqual(
      s.members.map((m) => m.name),
      ['y'],
    );
    assert.equal(s.leader, null);
  });
});

describe('router: decision', () => {
  it('routes writes to a leader that holds the lock and confirms on /primary', async () => {
    const d = await decidePrimary(snapshot('a'), probe(['a'], []));
    assert.deepEqual(d.primary, { name: 'a', host: '10.0.0.1', port: 5432 });
    assert.equal(d.unsettled, false);
    assert.equal(d.reason, 'leader a holds the lock and confirms on /primary');
  });

  it('routes writes nowhere when there is no leader key', async () => {
    const d = await decidePrimary(snapshot(null), probe(['a'], []));
    assert.equal(d.primary, null);
    assert.equal(d.unsettled, true);
    assert.match(d.reason, /^no leader key in etcd: routing writes nowhere/);
  });

  it('routes writes nowhere when the leader does not confirm (a demoted or frozen node)', async () => {
    const d = await decidePrimary(snapshot('a'), probe([], []));
    assert.equal(d.primary, null);
    assert.match(d.reason, /^leader a does not confirm on \/primary/);
  });

  it('never routes writes to a member other than the lock holder, even if it claims to be primary', async () => {
    const p = probe(['b'], []);
    const d = await decidePrimary(snapshot('a'), p);
    assert.equal(d.primary, null);
    assert.deepEqual(p.calls, ['primary a'], 'only the lock holder is asked');
  });

  it("routes writes nowhere when the lock holder is behind another member's timeline (a resumed stale primary)", async () => {
    const kvs: Record<string, string> = {
      [`${P}leader`]: 'a',
      [`${P}members/a`]: JSON.stringify({
        conn_url: 'postgres://10.0.0.1:5432/postgres',
        api_url: 'https://10.0.0.1:8008/patroni',
        role: 'master',
        state: 'running',
        timeline: 5,
      }),
      [`${P}members/b`]: JSON.stringify({
        conn_url: 'postgres://10.0.0.2:5432/postgres',
        api_url: 'https://10.0.0.2:8008/patroni',
        role: 'replica',
        state: 'running',
        timeline: 6,
      }),
    };
    const stale: MemberProbe = { primaryTimeline: async () => 5, isHealthyReplica: async () => true };
    const d = await decidePrimary(parseSnapshot(P, '7', kvs), stale);
    assert.equal(d.primary, null);
    assert.match(d.reason, /^leader a is on timeline 5 but b reached timeline 6: a stale primary holds the lock/);
    // A leader that has just promoted reports its new timeline itself, ahead of its own member key.
    const fresh: MemberProbe = { primaryTimeline: async () => 6, isHealthyReplica: async () => true };
    assert.equal((await decidePrimary(parseSnapshot(P, '7', kvs), fresh)).primary?.name, 'a');
  });

  it('keeps lagging or stopped replicas, and the lock holder, out of the replicas route', async () => {
    const p = probe(['a'], ['a', 'c']);
    const replicas = await decideReplicas(snapshot('a'), p, 4096);
    assert.deepEqual(
      replicas.map((r) => r.name),
      ['c'],
    );
    assert.deepEqual(p.calls.sort(), ['replica b 4096', 'replica c 4096']);
  });
});

class FakeDcs {
  fail = false;
  leader: string | null = 'a';
  watchStarts = 0;
  async read(): Promise<DcsSnapshot> {
    if (this.fail) throw new DcsUnavailable('etcd is down');
    return snapshot(this.leader);
  }
  async startWatch(): Promise<void> {
    this.watchStarts++;
  }
  async stopWatch(): Promise<void> {}
}

class FakeSink implements RouteSink {
  readonly name = 'fake';
  applied: Route[] = [];
  failures = 0;
  async apply(route: Route): Promise<string[]> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('socket gone');
    }
    const last = this.applied.at(-1);
    this.applied.push(route);
    return last && last.primary?.name === route.primary?.name ? [] : [`primary → ${route.primary?.name ?? 'nobody'}`];
  }
}

function router(dcs: FakeDcs, sink: FakeSink, p: MemberProbe, logs: RoutingLog[], mayWrite?: () => boolean) {
  return new Router({
    dcs: dcs as unknown as PatroniDcs,
    probe: p,
    sinks: [sink],
    metrics: createMetrics(),
    maxLagBytes: 1024,
    recheckIntervalMs: 1000,
    log: (l) => logs.push(l),
    ...(mayWrite ? { mayWrite } : {}),
  });
}

describe('router: control loop', () => {
  it('applies the decision, watches after the first read, and logs one line per change', async () => {
    const dcs = new FakeDcs();
    const sink = new FakeSink();
    const logs: RoutingLog[] = [];
    const r = router(dcs, sink, probe(['a'], ['b']), logs);
    assert.equal(await r.runCycle(), false);
    const logged = logs.length;
    assert.equal(await r.runCycle(), false);
    assert.equal(dcs.watchStarts, 1);
    assert.equal(sink.applied.at(-1)?.primary?.name, 'a');
    assert.equal(logs.length, logged, 'a cycle that changes nothing logs nothing');
    assert.deepEqual(logs[0]!.changes, ['fake: primary → a'], 'writes move first, before the replica probes');
    assert.deepEqual(
      sink.applied.at(-1)?.replicas.map((x) => x.name),
      ['b'],
    );
  });

  it('fails closed when etcd is unreachable, and re-watches after it returns', async () => {
    const dcs = new FakeDcs();
    const sink = new FakeSink();
    const logs: RoutingLog[] = [];
    const r = router(dcs, sink, probe(['a'], []), logs);
    await r.runCycle();
    dcs.fail = true;
    assert.equal(await r.runCycle(), true, 'look again soon');
    assert.deepEqual(sink.applied.at(-1), NOWHERE);
    assert.match(logs.at(-1)!.decision, /^etcd unreachable .*: routing nowhere \(fail closed\)$/);
    dcs.fail = false;
    await r.runCycle();
    assert.equal(sink.applied.at(-1)?.primary?.name, 'a');
    assert.equal(dcs.watchStarts, 2);
  });

  it('keeps going when a sink fails, and says so', async () => {
    const dcs = new FakeDcs();
    const sink = new FakeSink();
    const logs: RoutingLog[] = [];
    const r = router(dcs, sink, probe(['a'], []), logs);
    sink.failures = 2;
    await r.runCycle();
    assert.equal(r.state.lastCycleOk, false);
    assert.match(logs.at(-1)!.error!, /fake: socket gone/);
    await r.runCycle();
    assert.equal(r.state.lastCycleOk, true);
    assert.equal(sink.applied.at(-1)?.primary?.name, 'a');
  });

  it('a standby router (not holding the Lease) observes but never writes', async () => {
    const dcs = new FakeDcs();
    const sink = new FakeSink();
    const r = router(dcs, sink, probe(['a'], []), [], () => false);
    await r.runCycle();
    assert.equal(sink.applied.length, 0);
    assert.match(r.state.lastDecision, /^standby: leader a holds the lock/);
  });
});

describe('the router reports certificate expiry', () => {
  it("sets each certificate's expiry from the file, and counts a file it cannot read", async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { X509Certificate } = await import('node:crypto');
    const { createCa, issue } = await import('../../src/pki/certs.ts');
    const { readCertificateExpiry } = await import('../../src/router/main.ts');
    const dir = await mkdtemp(join(tmpdir(), 'gardenos-certs-'));
    try {
      const ca = await createCa('expiry test CA');
      const leaf = await issue(ca, { commonName: 'node1', ips: ['127.0.0.1'], dnsNames: [], usage: 'server', days: 20 });
      await writeFile(join(dir, 'ca.crt'), ca.cert);
      await writeFile(join(dir, 'node1.crt'), leaf.cert);
      await writeFile(join(dir, 'broken.crt'), 'not a certificate');
      const metrics = createMetrics();
      const logged: string[] = [];
      await readCertificateExpiry([join(dir, 'ca.crt'), join(dir, 'node1.crt'), join(dir, 'broken.crt'), join(dir, 'missing.crt')], metrics, (l) =>
        logged.push(l),
      );
      const series = (await metrics.certificateExpiry.get()).values;
      const leafExpiry = series.find((v) => v.labels.file === join(dir, 'node1.crt'))!;
      assert.equal(leafExpiry.value, Math.floor(Date.parse(new X509Certificate(leaf.cert).validTo) / 1000));
      assert.match(String(leafExpiry.labels.subject), /CN=node1/);
      assert.ok(leafExpiry.value - Date.now() / 1000 < 21 * 86400, 'a 20-day certificate expires within 21 days');
      assert.equal(series.length, 2, 'the unreadable files have no series');
      assert.equal((await metrics.errors.get()).values.find((v) => v.labels.kind === 'certificate')?.value, 2);
      assert.equal(logged.length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
