// A real node: the kubelet (built from k8s.io/kubernetes with the control plane) on Debian's
// containerd, runc and CNI plugins, joined to a real control plane on a real local GardenOS etcd
// (isolated, 10.251.228.0/24). Images are made here from Debian's binaries (scripts/build-images.sh)
// and imported: the pause sandbox is catatonit. The node registers and turns Ready, a pod runs
// and its log is read through the API server from the kubelet, and it reaches PostgreSQL's primary
// through HAProxy from the pod network. Then the router runs as rendered — its image built from
// the Dockerfile's recipe without Docker (scripts/build-router-image.sh), two replicas, one Lease,
// the ServiceAccount token the kubelet projects — and keeps postgres-primary on the local
// cluster's leader through a switchover. Needs root (namespaces, bridges, containers), as CI runs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { applyObjects, awaitRollouts } from '../../src/clients/apply.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { silent } from '../../src/log/events.ts';
import { issue, loadCa } from '../../src/pki/certs.ts';
import { SECRET_NAMES } from '../../src/platform/kube.ts';
import { routerManifests } from '../../src/render/kube/router.ts';
import { waitFor } from '../../src/util/wait.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';
import { startNode, type TestNode } from '../helpers/node.ts';

const run = promisify(execFile);
const ROUTER_IMAGE = new URL('../../scripts/build-router-image.sh', import.meta.url).pathname;
const asRoot = process.getuid?.() === 0;
const OCTET = 228;
const HOST = `10.251.${OCTET}.1`;

describe('a real node: kubelet and containerd running pods from images made here', { timeout: 900_000, skip: asRoot ? false : 'needs root for namespaces, bridges and containers (see README)' }, () => {
  let c: TestCluster;
  let cp: ControlPlane;
  let node: TestNode;

  before(async () => {
    c = await makeTestCluster('it-node', OCTET);
    const up = await c.cli(['local', 'up', '--isolated', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const ca = { cert: await readFile(`${c.stateDir}/pki/ca.crt`, 'utf8'), key: await readFile(`${c.stateDir}/pki/ca.key`, 'utf8') };
    cp = await startControlPlane({ host: HOST, etcd: { endpoints: [1, 2, 3].map((i) => `https://10.251.${OCTET}.1${i}:2379`), ca } });
    node = await startNode(cp, { name: 'garden-1', host: HOST });
  });
  after(async () => {
    await node?.stop();
    await cp?.stop();
    await c?.cleanup();
  });

  it('registers the node Ready with its pod CIDR, and runs a pod whose log the API server reads from the kubelet', async () => {
    const core = cp.admin().makeApiClient(CoreV1Api);
    const n = await core.readNode({ name: 'garden-1' });
    assert.equal(n.spec?.podCIDR, '10.42.0.0/24', 'the first slice of K3s\'s cluster CIDR');
    assert.ok(n.status?.addresses?.some((a) => a.type === 'InternalIP' && a.address === HOST));
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'hello' },
        spec: {
          containers: [{ name: 'sh', image: 'gardenos.local/tools:1', imagePullPolicy: 'Never', command: ['sh', '-c', `echo hello from $(hostname); printf 'GET /status HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${HOST} 8405 | head -n 1; nc -w 5 ${HOST} 5000 </dev/null && echo primary reachable; sleep 3600`] }],
          securityContext: { runAsNonRoot: true, runAsUser: 65534 },
        },
      },
    });
    const pod = await waitFor('the pod to run', async () => {
      const p = await core.readNamespacedPod({ name: 'hello', namespace: 'default' });
      if (p.status?.phase !== 'Running') {
        const events = (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=hello' })).items.map((e) => `${e.reason}: ${e.message}`);
        throw new Error(`${p.status?.phase}: ${JSON.stringify(p.status?.containerStatuses?.[0]?.state ?? p.status?.conditions)}; events: ${events.slice(-3).join(' | ')}`);
      }
      return p;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    assert.match(pod.status!.podIP!, /^10\.42\.0\.\d+$/);
    const log = await waitFor('the pod to log both checks', async () => {
      const l = await core.readNamespacedPodLog({ name: 'hello', namespace: 'default' });
      if (!/primary reachable/.test(l)) throw new Error(`log so far: ${JSON.stringify(l)}`);
      return l;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    assert.match(log, /^hello from hello$/m);
    assert.match(log, /^HTTP\/1\.1 200 OK\r?$/m, 'the router answered over HTTP from the pod network');
  });

  it('runs the router as rendered — its own image, 2 replicas, one Lease — keeping postgres-primary on the leader through a switchover', async () => {
    const { stdout } = await run('bash', [ROUTER_IMAGE], { maxBuffer: 1 << 22, timeout: 600_000 });
    await node.importImage('router', stdout.trim().split('\n').pop()!);
    // The platform as it would be rendered for hosts at the isolated cluster's addresses, with the router image built here.
    const config = parseConfig([
      'cluster: { name: it-node }',
      'postgres: { scope: it-node, ttl: 20, loopWait: 2, retryTimeout: 5 }',
      'router: { image: "gardenos.local/router:1" }',
      'nodes:',
      ...[1, 2, 3].map((i) => `  - { name: node${i}, address: { public: 10.251.${OCTET}.1${i}, private: 10.251.${OCTET}.1${i} } }`),
    ].join('\n'));
    const ca = await loadCa({ cert: await readFile(`${c.stateDir}/pki/ca.crt`, 'utf8'), key: await readFile(`${c.stateDir}/pki/ca.key`, 'utf8') });
    const client = await issue(ca, { commonName: 'router', usage: 'client' });
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET_NAMES.routerEtcd, namespace: 'database' }, type: 'Opaque', data: { 'ca.crt': b64(ca.cert), 'tls.crt': b64(client.cert), 'tls.key': b64(client.key) } };
    const objects = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'database' } }, secret, ...routerManifests(config)] as KubernetesObject[];
    await applyObjects(cp.admin(), objects, { report: silent });
    // The rollout as `gardenos up` waits for it: both replicas ready (/readyz: a cycle applied to every sink).
    await awaitRollouts(cp.admin(), objects, { report: silent, waitMs: 120_000 }).catch(async (e) => {
      const core = cp.admin().makeApiClient(CoreV1Api);
      const pods = (await core.listNamespacedPod({ namespace: 'database' })).items;
      const logs = await Promise.all(pods.map((p) => core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: 'database' }).then((l) => l.slice(-600), (x: Error) => x.message.slice(0, 300))));
      throw new Error(`${(e as Error).message}; pods: ${pods.map((p, i) => `${p.metadata?.name} ${JSON.stringify(p.status?.containerStatuses?.[0]?.state)} log: ${logs[i]}`).join(' | ')}`);
    });
    const core = cp.admin().makeApiClient(CoreV1Api);
    const primaryIps = async () => ((await core.readNamespacedEndpoints({ name: 'postgres-primary', namespace: 'database' })).subsets ?? []).flatMap((x) => (x.addresses ?? []).map((a) => a.ip));
    const leaderHost = async () => (JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as LocalStatus).members.find((m) => m.role === 'leader' && m.state === 'running')?.host;
    const routed = (what: string) => waitFor(`postgres-primary to name ${what}`, async () => {
      const want = await leaderHost();
      const got = await primaryIps();
      if (!want || got.join() !== want) {
        const pods = (await core.listNamespacedPod({ namespace: 'database', labelSelector: 'app.kubernetes.io/name=gardenos-router' })).items;
        const logs = await Promise.all(pods.map((p) => core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: 'database', tailLines: 2 }).catch((x: Error) => x.message)));
        throw new Error(`leader ${want}, Endpoints [${got}]; router logs: ${logs.join(' | ').slice(0, 1500)}`);
      }
      return want;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    const before = await routed('the leader');
    const lease = await cp.admin().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'gardenos-router', namespace: 'database' });
    assert.match(lease.spec?.holderIdentity ?? '', /^gardenos-router-/, 'a router pod holds the Lease');
    const r = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(await routed('the new leader'), before);
  });
});
