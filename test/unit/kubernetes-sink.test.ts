// The Kubernetes sink and Lease against a stand-in Kubernetes API server
// (test/helpers/kube-standin.ts): real REST through @kubernetes/client-node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Router } from '../../src/router/controller.ts';
import { parseSnapshot, type PatroniDcs } from '../../src/router/dcs.ts';
import { NOWHERE, type Route } from '../../src/router/decide.ts';
import { createMetrics } from '../../src/router/metrics.ts';
import { KubernetesSink, LeaseHolder, ROLE_LABEL } from '../../src/router/sinks/kubernetes.ts';
import { startKubeStandIn, type KubeStandIn } from '../helpers/kube-standin.ts';

const NS = 'database';
const EP = (n: string) => `/api/v1/namespaces/${NS}/endpoints/${n}`;
const SLICE = (n: string) => `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/${n}-gardenos`;
const POD = (n: string) => `/api/v1/namespaces/${NS}/pods/${n}`;

const route: Route = {
  primary: { name: 'postgres-0', host: '10.42.0.10', port: 5432 },
  replicas: [
    { name: 'postgres-1', host: '10.42.1.11', port: 5432 },
    { name: 'postgres-2', host: '10.42.2.12', port: 5432 },
  ],
};

const ips = (o: any): string[] => (o?.subsets ?? []).flatMap((s: any) => s.addresses.map((a: any) => a.ip)).sort();

describe('Kubernetes sink (stand-in Kubernetes API server)', () => {
  let api: KubeStandIn;
  let sink: KubernetesSink;

  before(async () => {
    api = await startKubeStandIn();
    for (const [i, name] of ['postgres-0', 'postgres-1', 'postgres-2', 'unrelated'].entries()) {
      api.put(POD(name), { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { app: i < 3 ? 'postgres' : 'other' } } });
    }
    sink = new KubernetesSink(api.kubeConfig(), { namespace: NS, primaryService: 'postgres-primary', replicasService: 'postgres-replica', podSelector: 'app=postgres', port: 5432 });
  });
  after(() => api.close());

  it('stand-in: writes Endpoints and an EndpointSlice holding only the leader pod IP, and role labels', async () => {
    const changes = await sink.apply(route);
    assert.deepEqual(ips(api.get(EP('postgres-primary'))), ['10.42.0.10']);
    assert.deepEqual(ips(api.get(EP('postgres-replica'))), ['10.42.1.11', '10.42.2.12']);
    const slice = api.get(SLICE('postgres-primary')) as any;
    assert.deepEqual(slice.endpoints.map((e: any) => e.addresses[0]), ['10.42.0.10']);
    assert.equal(slice.metadata.labels['kubernetes.io/service-name'], 'postgres-primary');
    assert.equal(slice.addressType, 'IPv4');
    assert.equal((api.get(POD('postgres-0')) as any).metadata.labels[ROLE_LABEL], 'primary');
    assert.equal((api.get(POD('postgres-1')) as any).metadata.labels[ROLE_LABEL], 'replica');
    assert.equal((api.get(POD('unrelated')) as any).metadata.labels[ROLE_LABEL], undefined, 'pods outside the selector are left alone');
    assert.ok(changes.includes('Endpoints postgres-primary → [postgres-0 10.42.0.10]'), changes.join('\n'));
  });

  it('stand-in: changes nothing when the cluster already routes that way', async () => {
    const before = api.requests.length;
    assert.deepEqual(await sink.apply(route), []);
    assert.ok(api.requests.slice(before).every((r) => r.method === 'GET'), 'reads only');
  });

  it('stand-in: retries a write that loses a resourceVersion race (409 Conflict)', async () => {
    const next: Route = { primary: route.replicas[0]!, replicas: [route.primary!, route.replicas[1]!] };
    api.conflictNext('PUT', EP('postgres-primary'));
    await sink.apply(next);
    assert.deepEqual(ips(api.get(EP('postgres-primary'))), ['10.42.1.11']);
    const puts = api.requests.filter((r) => r.method === 'PUT' && r.path === EP('postgres-primary'));
    assert.deepEqual(puts.slice(-2).map((r) => r.status), [409, 200]);
    assert.equal((api.get(POD('postgres-1')) as any).metadata.labels[ROLE_LABEL], 'primary');
    assert.equal((api.get(POD('postgres-0')) as any).metadata.labels[ROLE_LABEL], 'replica');
  });

  it('stand-in: empties the primary Service when no leader is confirmed (clients are refused)', async () => {
    await sink.apply(NOWHERE);
    assert.deepEqual((api.get(EP('postgres-primary')) as any).subsets, []);
    assert.deepEqual((api.get(SLICE('postgres-primary')) as any).endpoints, []);
    for (const p of ['postgres-0', 'postgres-1', 'postgres-2']) assert.equal((api.get(POD(p)) as any).metadata.labels[ROLE_LABEL], 'unavailable');
  });
});

describe('router Lease (stand-in Kubernetes API server)', () => {
  let api: KubeStandIn;
  before(async () => {
    api = await startKubeStandIn();
  });
  after(() => api.close());

  it('stand-in: only one of two routers holds the Lease; the other takes over when it expires', async () => {
    const a = new LeaseHolder(api.kubeConfig(), NS, 'gardenos-router', 2, 'router-a');
    const b = new LeaseHolder(api.kubeConfig(), NS, 'gardenos-router', 2, 'router-b');
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(await b.tryAcquireOrRenew(), false);
    assert.equal(a.isHolder(), true);
    assert.equal(b.isHolder(), false);
    assert.equal(await a.tryAcquireOrRenew(), true, 'the holder renews');
    // a stops renewing (crashed); once the Lease is past its duration, b takes it.
    const lease = api.get(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/gardenos-router`) as any;
    api.put(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/gardenos-router`, { ...lease, spec: { ...lease.spec, renewTime: new Date(Date.now() - 5000).toISOString() } });
    assert.equal(await b.tryAcquireOrRenew(), true);
    const taken = api.get(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/gardenos-router`) as any;
    assert.equal(taken.spec.holderIdentity, 'router-b');
    assert.equal(taken.spec.leaseTransitions, 2);
    assert.equal(await a.tryAcquireOrRenew(), false, 'the old holder does not take it back');
  });

  it('stand-in: two routers racing for a free Lease: exactly one wins (409 for the other)', async () => {
    const x = new LeaseHolder(api.kubeConfig(), NS, 'race', 15, 'router-x');
    const y = new LeaseHolder(api.kubeConfig(), NS, 'race', 15, 'router-y');
    const results = await Promise.all([x.tryAcquireOrRenew(), y.tryAcquireOrRenew()]);
    assert.equal(results.filter(Boolean).length, 1);
  });
});

describe('two routers, one Lease (stand-in Kubernetes API server)', () => {
  let api: KubeStandIn;
  before(async () => {
    api = await startKubeStandIn();
  });
  after(() => api.close());

  it('stand-in: only the router holding the Lease writes the primary Endpoints', async () => {
    // Two routers that disagree (as one with a stale view would): only the Lease holder's view may land.
    const P = '/service/s/';
    const member = (ip: string) => JSON.stringify({ conn_url: `postgres://${ip}:5432/postgres`, api_url: `https://${ip}:8008/patroni`, role: 'replica', state: 'running' });
    const kvs = { [`${P}members/postgres-0`]: member('10.42.0.10'), [`${P}members/postgres-1`]: member('10.42.1.11') };
    const make = (leader: string, identity: string) => {
      const lease = new LeaseHolder(api.kubeConfig(), NS, 'gardenos-router', 15, identity);
      const dcs = { read: async () => parseSnapshot(P, '1', { ...kvs, [`${P}leader`]: leader }), startWatch: async () => {}, stopWatch: async () => {} };
      const router = new Router({
        dcs: dcs as unknown as PatroniDcs,
        probe: { primaryTimeline: async (m) => (m.name === leader ? 1 : null), isHealthyReplica: async () => true },
        sinks: [new KubernetesSink(api.kubeConfig(), { namespace: NS, primaryService: 'postgres-primary', replicasService: 'postgres-replica', podSelector: 'app=postgres', port: 5432 })],
        metrics: createMetrics(),
        maxLagBytes: 1024,
        recheckIntervalMs: 1000,
        mayWrite: () => lease.isHolder(),
        log: () => {},
      });
      return { lease, router };
    };
    const a = make('postgres-0', 'router-a');
    const b = make('postgres-1', 'router-b');
    assert.equal(await a.lease.tryAcquireOrRenew(), true);
    assert.equal(await b.lease.tryAcquireOrRenew(), false);
    await a.router.runCycle();
    await b.router.runCycle();
    assert.deepEqual(ips(api.get(EP('postgres-primary'))), ['10.42.0.10']);
    assert.match(b.router.state.lastDecision, /^standby: /);
  });
});
