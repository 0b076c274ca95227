// A real node: the kubelet (built from k8s.io/kubernetes with the control plane) on Debian's
// containerd, runc and CNI plugins, joined to a real control plane on a real local GardenOS etcd
// (isolated, 10.251.228.0/24). Images are made here from Debian's binaries (scripts/build-images.sh)
// and imported: the pause sandbox is catatonit. The node registers and turns Ready, a pod runs
// and its log is read through the API server from the kubelet, and it reaches PostgreSQL's primary
// through HAProxy from the pod network. Needs root (namespaces, bridges, containers), as CI runs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { waitFor } from '../../src/util/wait.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';
import { startNode, type TestNode } from '../helpers/node.ts';

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
});
