// The rendered platform on a real Kubernetes control plane (kube-apiserver, controller-manager and
// scheduler built from k8s.io/kubernetes, test/helpers/kube.ts) whose state lives in a real local
// GardenOS etcd over mutual TLS (10.251.225.0/24, isolated: the API server refuses loopback
// addresses in Endpoints). Every manifest is server-side applied by `gardenos up`'s manifests
// code, twice; the controllers' work is checked as they leave it (there is no kubelet here: pods
// stay Pending); the router's ServiceAccount is held to its Role; doctor's and status's Kubernetes
// views read the real API server. Needs root (network namespaces), as CI runs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubernetesObjectApi,
  PolicyV1Api,
  StorageV1Api,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { applyObjects } from '../../src/clients/apply.ts';
import { EtcdClient } from '../../src/clients/etcd.ts';
import { GardenError } from '../../src/errors.ts';
import type { Finding } from '../../src/doctor/checks.ts';
import type { DoctorReport } from '../../src/doctor/run.ts';
import { etcdEndpoints, openLocalCluster } from '../../src/local/cluster.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { silent } from '../../src/log/events.ts';
import { kustomizationObjects, renderPlatform } from '../../src/platform/render.ts';
import { ensurePlatformPki, ensurePlatformSecrets } from '../../src/platform/secrets.ts';
import { APPLY_ANNOTATION, CREATE_ONLY, ROUTER_NAME } from '../../src/render/kube/names.ts';
import { NOWHERE, type Route } from '../../src/router/decide.ts';
import { KubernetesSink, LeaseHolder, ROLE_LABEL } from '../../src/router/sinks/kubernetes.ts';
import { waitFor } from '../../src/util/wait.ts';
import { exampleConfig } from '../helpers/fixtures.ts';
import { installCertManagerCrds, startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';

const asRoot = process.getuid?.() === 0;
const OCTET = 225;
const DB = 'database';

const code = (e: unknown) => (e instanceof ApiException ? e.code : undefined);
const ips = (o: { subsets?: { addresses?: { ip: string }[] }[] }) => (o.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();

/** The fields of `want` that `got` does not hold with the same value (what admission or defaulting changed). */
function changedFields(want: unknown, got: unknown, path = ''): string[] {
  // The API server drops empty lists and maps (and gives some back as null): nothing set, nothing changed.
  const empty = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0);
  if (empty(want) && empty(got)) return [];
  if (want === null || typeof want !== 'object') return want === got ? [] : [`${path}: rendered ${JSON.stringify(want)}, live ${JSON.stringify(got)}`];
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length)
      return [`${path}: rendered ${want.length} items, live ${Array.isArray(got) ? got.length : JSON.stringify(got)}`];
    return want.flatMap((w, i) => changedFields(w, got[i], `${path}[${i}]`));
  }
  if (got === null || typeof got !== 'object') return [`${path}: missing`];
  return Object.entries(want).flatMap(([k, v]) => changedFields(v, (got as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
}

describe('the rendered platform on a real Kubernetes control plane, on GardenOS etcd', {
  timeout: 1_200_000,
  skip: asRoot ? false : 'needs root to create network namespaces (see README)',
}, () => {
  let c: TestCluster;
  let cp: ControlPlane;
  let objects: KubernetesObject[];
  const scope = exampleConfig().postgres.scope;
  const pods = [0, 1, 2].map((i) => `${scope}-${i}`);

  before(async () => {
    c = await makeTestCluster('it-kube', OCTET);
    const up = await c.cli(['local', 'up', '--isolated', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    const ca = { cert: await readFile(local.layout.ca.cert, 'utf8'), key: await readFile(local.layout.ca.key, 'utf8') };
    cp = await startControlPlane({ host: `10.251.${OCTET}.1`, etcd: { endpoints: etcdEndpoints(local), ca } });
    // GardenOS's own local-path StorageClass and provisioner instead of K3s's (there is no K3s here): more of the render, applied.
    const config = exampleConfig();
    config.k3s.disable.push('local-storage');
    // And the platform's monitoring (Prometheus, Alertmanager, node-exporter): held to the real API server too.
    config.monitoring.enabled = true;
    await ensurePlatformSecrets(`${c.dir}/platform`, config);
    await ensurePlatformPki(`${c.dir}/platform`, config);
    objects = kustomizationObjects(await renderPlatform(config, { secretsDir: `${c.dir}/platform`, withSecrets: true })) as KubernetesObject[];
  });
  after(async () => {
    await cp?.stop();
    await c?.cleanup();
  });

  it("keeps the API server's state in GardenOS's etcd, reached with the K3s datastore certificate", async () => {
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    const etcd = new EtcdClient(etcdEndpoints(local), local.layout.client);
    try {
      const keys = Object.keys((await etcd.readPrefix('/registry/namespaces/')).kvs);
      assert.ok(keys.includes('/registry/namespaces/kube-system') && keys.includes('/registry/namespaces/default'), keys.join(', '));
    } finally {
      etcd.close();
    }
  });

  it('refuses before applying anything: an API this cluster does not serve (cert-manager, for tls: acme), an Ingress whose TLS Secret is nowhere', async () => {
    const kc = cp.admin();
    const core = kc.makeApiClient(CoreV1Api);
    const namespaces = async () => (await core.listNamespace()).items.map((n) => n.metadata!.name!).sort();
    const before = await namespaces();
    await assert.rejects(applyObjects(kc, objects, { report: silent }), (e: unknown) => {
      assert.ok(e instanceof GardenError, String(e));
      assert.match(e.message, /^Certificate apps\/api\.example\.com-tls is cert-manager\.io\/v1, which this cluster does not serve; nothing was applied$/);
      assert.match(e.hint ?? '', /tls: acme need cert-manager/);
      return true;
    });
    assert.deepEqual(await namespaces(), before, 'nothing applied, not even the namespaces');

    // With cert-manager's CRDs (from its Go module), the kinds are served; a TLS Secret that nothing provides is still refused.
    assert.equal((await installCertManagerCrds(kc)).length, 4);
    const ingress = structuredClone(objects.find((o) => o.kind === 'Ingress' && o.metadata?.namespace === 'apps')!) as KubernetesObject & {
      spec: { tls: unknown[] };
    };
    ingress.spec.tls = [{ hosts: ['own.example.com'], secretName: 'own-cert' }];
    await assert.rejects(
      applyObjects(kc, [ingress], { report: silent }),
      /Ingress apps\/main-api serves own\.example\.com with TLS Secret own-cert, which is not in namespace apps; nothing was applied/,
    );
  });

  it('server-side applies every rendered object as rendered, in order; a second apply changes nothing', async () => {
    const kc = cp.admin();
    const first = await applyObjects(kc, objects, { report: silent });
    assert.equal(first.applied.length, objects.length);
    assert.deepEqual(first.leftAlone, []);
    const api = KubernetesObjectApi.makeApiClient(kc);
    const read = (o: KubernetesObject) =>
      api.read({
        apiVersion: o.apiVersion!,
        kind: o.kind!,
        metadata: { name: o.metadata!.name!, ...(o.metadata!.namespace ? { namespace: o.metadata!.namespace } : {}) },
      });
    const versions = new Map<string, string>();
    const changed: string[] = [];
    for (const o of objects) {
      const live = await read(o);
      versions.set(`${o.kind}/${o.metadata!.namespace}/${o.metadata!.name}`, live.metadata!.resourceVersion!);
      // What GardenOS rendered is what the cluster keeps (stringData is write-only: it becomes data).
      const { stringData: _, ...rendered } = o as KubernetesObject & { stringData?: unknown };
      changed.push(...changedFields(rendered, live).map((f) => `${o.kind} ${o.metadata!.namespace ?? ''}/${o.metadata!.name}: ${f}`));
    }
    assert.deepEqual(changed, [], 'the API server kept every rendered field as rendered');

    // A second `up` one second later (managedFields times have whole seconds).
    await new Promise((r) => setTimeout(r, 1100));
    const secondAt = Date.now();
    const second = await applyObjects(kc, objects, { report: silent });
    const createOnly = objects.filter((o) => o.metadata?.annotations?.[APPLY_ANNOTATION] === CREATE_ONLY).length;
    assert.ok(createOnly >= 5, `the router's Endpoints, EndpointSlices and Lease are create-only (${createOnly})`);
    assert.equal(second.leftAlone.length, createOnly);
    const changedBySecond: string[] = [];
    for (const o of objects) {
      const key = `${o.kind}/${o.metadata!.namespace}/${o.metadata!.name}`;
      const live = await read(o);
      if (live.metadata!.resourceVersion === versions.get(key)) continue;
      // Changed since: by a controller (the PVC binder, say), or by this apply? GardenOS's entry says when it last changed anything.
      const mine = live.metadata!.managedFields?.find((m) => m.manager === 'gardenos');
      if (mine?.time && new Date(mine.time).getTime() >= secondAt - 1000)
        changedBySecond.push(`${key} (${live.metadata!.managedFields?.map((m) => `${m.manager} ${m.operation} ${m.time}`).join('; ')})`);
    }
    assert.deepEqual(changedBySecond, [], 'the second apply changed nothing');
  });

  it("holds the ACME issuer and certificates to cert-manager's own schema: a broken issuer is refused", async () => {
    const custom = cp.admin().makeApiClient(CustomObjectsApi);
    const issuer = (await custom.getClusterCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'clusterissuers', name: 'gardenos-acme' })) as {
      spec: { acme: { email: string; solvers: { http01: { ingress: { ingressClassName: string } } }[] } };
    };
    assert.deepEqual([issuer.spec.acme.email, issuer.spec.acme.solvers[0]!.http01.ingress.ingressClassName], ['ops@example.com', 'traefik']);
    const cert = (await custom.getNamespacedCustomObject({
      group: 'cert-manager.io',
      version: 'v1',
      namespace: 'apps',
      plural: 'certificates',
      name: 'api.example.com-tls',
    })) as { spec: { secretName: string; dnsNames: string[] } };
    assert.deepEqual([cert.spec.secretName, cert.spec.dnsNames], ['api.example.com-tls', ['api.example.com']]);
    // The schema bites: an ACME issuer without the account key's Secret is refused (422), so the rendered one passed a real check.
    const broken = {
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: 'broken' },
      spec: { acme: { email: 'ops@example.com', server: 'https://acme.example/dir', solvers: [] } },
    };
    await assert.rejects(
      custom.createClusterCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'clusterissuers', body: broken }),
      (e: unknown) => code(e) === 422 && /privateKeySecretRef/.test(String((e as { body?: unknown }).body)),
    );
  });

  it('is acted on by the real controllers: ReplicaSets, StatefulSet pods and claims, PDB status, EndpointSlices, the scheduler', async () => {
    const kc = cp.admin();
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const policy = kc.makeApiClient(PolicyV1Api);
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    await waitFor(
      'a ReplicaSet for every Deployment',
      async () => {
        const missing: string[] = [];
        for (const d of deployments) {
          const sets = await apps.listNamespacedReplicaSet({ namespace: d.metadata!.namespace! });
          if (!sets.items.some((rs) => rs.metadata?.ownerReferences?.some((r) => r.kind === 'Deployment' && r.name === d.metadata!.name)))
            missing.push(d.metadata!.name!);
        }
        if (missing.length) throw new Error(`no ReplicaSet yet for ${missing.join(', ')}`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

    // The StatefulSet's pods (Parallel) and their claims exist; with no node they are unschedulable, said by the real scheduler.
    await waitFor(
      'the database pods to be created and found unschedulable',
      async () => {
        const list = await core.listNamespacedPod({ namespace: DB, labelSelector: `application=spilo,cluster-name=${scope}` });
        const names = list.items.map((p) => p.metadata!.name!).sort();
        if (names.join() !== pods.join()) throw new Error(`pods: ${names.join(', ')}`);
        const unscheduled = list.items.filter((p) =>
          p.status?.conditions?.some((x) => x.type === 'PodScheduled' && x.status === 'False' && x.reason === 'Unschedulable'),
        );
        if (unscheduled.length !== 3) throw new Error(`${unscheduled.length}/3 marked Unschedulable`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const claims = (await core.listNamespacedPersistentVolumeClaim({ namespace: DB })).items.map((p) => `${p.metadata!.name}:${p.status?.phase}`).sort();
    assert.deepEqual(
      claims,
      pods.map((p) => `pgdata-${p}:Pending`),
    );
    // Prometheus's StatefulSet made its pod and its claim of monitoring.storage.
    const platformNs = exampleConfig().namespaces.platform;
    await waitFor(
      "Prometheus's pod and claim",
      async () => {
        const pvc = (await core.listNamespacedPersistentVolumeClaim({ namespace: platformNs })).items.find((p) => p.metadata!.name === 'data-prometheus-0');
        const pod = (await core.listNamespacedPod({ namespace: platformNs })).items.find((p) => p.metadata!.name === 'prometheus-0');
        if (!pvc || !pod) throw new Error(`claim ${pvc ? 'made' : 'missing'}, pod ${pod ? 'made' : 'missing'}`);
        assert.equal(pvc.spec?.resources?.requests?.storage, exampleConfig().monitoring.storage);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

    await waitFor(
      'the PodDisruptionBudget to count the database pods',
      async () => {
        const pdb = await policy.readNamespacedPodDisruptionBudget({ name: scope, namespace: DB });
        if (pdb.status?.expectedPods !== 3) throw new Error(`expectedPods ${pdb.status?.expectedPods}`);
        assert.equal(pdb.status.disruptionsAllowed, 0, 'no pod is healthy, so none may be disrupted');
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

    // A selector Service gets its slice from the EndpointSlice controller; the router's Services only their own (skip-mirror).
    await waitFor(
      "the EndpointSlice controller's slice for the headless database Service",
      async () => {
        const slices = await discovery.listNamespacedEndpointSlice({ namespace: DB, labelSelector: `kubernetes.io/service-name=${scope}` });
        if (!slices.items.some((s) => s.metadata?.labels?.['endpointslice.kubernetes.io/managed-by'] === 'endpointslice-controller.k8s.io'))
          throw new Error('none yet');
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    for (const service of ['postgres-primary', 'postgres-replica']) {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: DB, labelSelector: `kubernetes.io/service-name=${service}` });
      assert.deepEqual(
        slices.items.map((s) => s.metadata!.name),
        [`${service}-gardenos`],
        `${service}: the router's slice only, no mirrored one`,
      );
    }
    // The API server advertises itself at the test's non-loopback address.
    assert.deepEqual(ips(await core.readNamespacedEndpoints({ name: 'kubernetes', namespace: 'default' })), [`10.251.${OCTET}.1`]);
  });

  describe("the router's ServiceAccount", () => {
    let sink: KubernetesSink;
    let token: string;
    const route: Route = {
      primary: { name: pods[0]!, host: '10.42.0.10', port: 5432 },
      replicas: [
        { name: pods[1]!, host: '10.42.1.11', port: 5432 },
        { name: pods[2]!, host: '10.42.2.12', port: 5432 },
      ],
    };

    before(async () => {
      token = await cp.serviceAccountToken(DB, ROUTER_NAME);
      sink = new KubernetesSink(cp.withToken(token), {
        namespace: DB,
        primaryService: 'postgres-primary',
        replicasService: 'postgres-replica',
        podSelector: `application=spilo,cluster-name=${scope}`,
        port: 5432,
      });
    });

    it('does everything the router must, on the pre-created objects', async () => {
      const changes = await sink.apply(route);
      assert.ok(changes.includes(`Endpoints postgres-primary → [${pods[0]} 10.42.0.10]`), changes.join('\n'));
      const core = cp.admin().makeApiClient(CoreV1Api);
      assert.deepEqual(ips(await core.readNamespacedEndpoints({ name: 'postgres-primary', namespace: DB })), ['10.42.0.10']);
      const slice = await cp.admin().makeApiClient(DiscoveryV1Api).readNamespacedEndpointSlice({ name: 'postgres-primary-gardenos', namespace: DB });
      assert.deepEqual(
        (slice.endpoints ?? []).map((e) => e.addresses[0]),
        ['10.42.0.10'],
      );
      const labels = Object.fromEntries(
        (await core.listNamespacedPod({ namespace: DB, labelSelector: `application=spilo,cluster-name=${scope}` })).items.map((p) => [
          p.metadata!.name,
          p.metadata!.labels![ROLE_LABEL],
        ]),
      );
      assert.deepEqual(labels, { [pods[0]!]: 'primary', [pods[1]!]: 'replica', [pods[2]!]: 'replica' });
      assert.deepEqual(await sink.apply(route), [], 'nothing to change the second time');
      const lease = new LeaseHolder(cp.withToken(token), DB, ROUTER_NAME, 15, 'router-test');
      assert.equal(await lease.tryAcquireOrRenew(), true, 'takes the pre-created Lease');
      assert.equal(await lease.tryAcquireOrRenew(), true, 'and renews it');
    });

    it('empties postgres-primary when no leader is confirmed (clients are refused, never sent to a demoted node)', async () => {
      await sink.apply(NOWHERE);
      const core = cp.admin().makeApiClient(CoreV1Api);
      assert.deepEqual((await core.readNamespacedEndpoints({ name: 'postgres-primary', namespace: DB })).subsets ?? [], []);
      const slice = await cp.admin().makeApiClient(DiscoveryV1Api).readNamespacedEndpointSlice({ name: 'postgres-primary-gardenos', namespace: DB });
      assert.deepEqual(slice.endpoints ?? [], []);
      const labels = (await core.listNamespacedPod({ namespace: DB, labelSelector: `application=spilo,cluster-name=${scope}` })).items.map(
        (p) => p.metadata!.labels![ROLE_LABEL],
      );
      assert.deepEqual(labels, ['unavailable', 'unavailable', 'unavailable']);
      await sink.apply(route);
    });

    it('two routers racing for a free Lease: exactly one wins (the API server answers the other 409)', async () => {
      const coordination = cp.admin().makeApiClient(CoordinationV1Api);
      await coordination.createNamespacedLease({ namespace: DB, body: { metadata: { name: 'it-race' }, spec: {} } });
      const x = new LeaseHolder(cp.admin(), DB, 'it-race', 15, 'router-x');
      const y = new LeaseHolder(cp.admin(), DB, 'it-race', 15, 'router-y');
      const results = await Promise.all([x.tryAcquireOrRenew(), y.tryAcquireOrRenew()]);
      assert.equal(results.filter(Boolean).length, 1, JSON.stringify(results));
      const lease = await coordination.readNamespacedLease({ name: 'it-race', namespace: DB });
      assert.equal(lease.spec?.holderIdentity, results[0] ? 'router-x' : 'router-y');
    });

    it('is refused (403) everything outside its Role', async () => {
      const kc = cp.withToken(token);
      const core = kc.makeApiClient(CoreV1Api);
      const refused = async (what: string, p: Promise<unknown>) => {
        const e = await p.then(
          () => undefined,
          (x: unknown) => x,
        );
        assert.equal(code(e), 403, `${what}: expected 403, got ${e === undefined ? 'success' : String(code(e) ?? e)}`);
      };
      await refused('reading a Secret', core.readNamespacedSecret({ name: 'postgres-patroni', namespace: DB }));
      await refused('listing Secrets', core.listNamespacedSecret({ namespace: DB }));
      await refused(
        "updating another Service's Endpoints",
        core
          .readNamespacedEndpoints({ name: scope, namespace: DB })
          .catch(() => core.replaceNamespacedEndpoints({ name: scope, namespace: DB, body: { metadata: { name: scope } } })),
      );
      await refused("the API server's own Endpoints", core.readNamespacedEndpoints({ name: 'kubernetes', namespace: 'default' }));
      await refused('Endpoints in another namespace', core.readNamespacedEndpoints({ name: 'postgres-primary', namespace: 'supabase' }));
      await refused('creating Endpoints', core.createNamespacedEndpoints({ namespace: DB, body: { metadata: { name: 'sneaky' }, subsets: [] } }));
      await refused('deleting its own Endpoints', core.deleteNamespacedEndpoints({ name: 'postgres-primary', namespace: DB }));
      await refused(
        'creating a Pod',
        core.createNamespacedPod({ namespace: DB, body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } } }),
      );
      await refused(
        'patching a pod outside the database',
        core.patchNamespacedPod({ name: 'x', namespace: 'supabase', body: { metadata: { labels: { a: 'b' } } } }),
      );
      await refused(
        'deleting its Lease',
        kc
          .makeApiClient(CustomObjectsApi)
          .deleteNamespacedCustomObject({ group: 'coordination.k8s.io', version: 'v1', namespace: DB, plural: 'leases', name: ROUTER_NAME }),
      );
      await refused('listing nodes', core.listNode());
    });

    it('a second `gardenos up` leaves the route the router wrote', async () => {
      const second = await applyObjects(cp.admin(), objects, { report: silent });
      assert.ok(second.leftAlone.includes(`Endpoints ${DB}/postgres-primary`), second.leftAlone.join(', '));
      const core = cp.admin().makeApiClient(CoreV1Api);
      assert.deepEqual(ips(await core.readNamespacedEndpoints({ name: 'postgres-primary', namespace: DB })), ['10.42.0.10']);
    });
  });

  describe("doctor's and status's Kubernetes views, against the real API server", () => {
    const json = <T>(s: string) => JSON.parse(s) as T;
    const doctorUntil = (id: string, want: Finding['status']) =>
      waitFor(
        `doctor to report ${id} ${want}`,
        async () => {
          const r = await c.cli(['local', 'doctor', '--json', '--kubeconfig', cp.adminKubeconfigFile]);
          const f = json<DoctorReport>(r.stdout).findings.find((x) => x.id === id)!;
          if (f.status !== want) throw new Error(`${id} is ${f.status}: ${f.summary}`);
          return f;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );

    it('k8s-default-storage-class: the rendered local-path class is the default; removing that is named, and `up` puts it back', async () => {
      const ok = await doctorUntil('k8s-default-storage-class', 'ok');
      assert.match(ok.summary, /default: local-path/);
      const storage = cp.admin().makeApiClient(StorageV1Api);
      await storage.patchStorageClass({
        name: 'local-path',
        body: [{ op: 'replace', path: '/metadata/annotations/storageclass.kubernetes.io~1is-default-class', value: 'false' }],
      });
      const f = await doctorUntil('k8s-default-storage-class', 'fail');
      assert.match(f.fix!, /kubectl patch storageclass local-path .*is-default-class/);
      await applyObjects(cp.admin(), objects, { report: silent });
      await doctorUntil('k8s-default-storage-class', 'ok');
    });

    it('k8s-control-plane-taint: names a tainted hybrid server', async () => {
      const core = cp.admin().makeApiClient(CoreV1Api);
      // No kubelet runs here: the Node is registered as a kubelet would register it.
      await core.createNode({
        body: {
          metadata: { name: 'garden-1', labels: { 'node-role.kubernetes.io/control-plane': 'true' } },
          spec: { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] },
        },
      });
      const f = await doctorUntil('k8s-control-plane-taint', 'fail');
      assert.match(f.summary, /control-plane taint on garden-1/);
      assert.match(f.fix!, /kubectl taint node garden-1 node-role\.kubernetes\.io\/control-plane:NoSchedule-/);
      await core.patchNode({ name: 'garden-1', body: [{ op: 'remove', path: '/spec/taints' }] });
      await doctorUntil('k8s-control-plane-taint', 'ok');
    });

    it('primary-endpoint: names postgres-primary pointing away from the leader, and is quiet once the router points it at the leader', async () => {
      const wrong = await doctorUntil('primary-endpoint', 'fail');
      assert.match(wrong.summary, /postgres-primary points at \[10\.42\.0\.10\], the leader is node\d/);
      const s = json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout);
      const leader = s.members.find((m) => m.role === 'leader')!;
      const sink = new KubernetesSink(cp.withToken(await cp.serviceAccountToken(DB, ROUTER_NAME)), {
        namespace: DB,
        primaryService: 'postgres-primary',
        replicasService: 'postgres-replica',
        podSelector: `application=spilo,cluster-name=${scope}`,
        port: 5432,
      });
      await sink.apply({ primary: { name: leader.name, host: leader.host, port: 5432 }, replicas: [] });
      await doctorUntil('primary-endpoint', 'ok');
    });

    it('status --kubeconfig lists nodes and workloads, and the database StatefulSet short of ready pods degrades it', async () => {
      const r = await c.cli(['local', 'status', '--kubeconfig', cp.adminKubeconfigFile]);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stdout, /^garden-1\s+\S+\s+control-plane/m);
      assert.match(r.stdout, new RegExp(`^${DB}\\s+statefulset/${scope}\\s+0/3$`, 'm'));
      const s = json<LocalStatus>((await c.cli(['local', 'status', '--json', '--kubeconfig', cp.adminKubeconfigFile])).stdout);
      assert.deepEqual(
        s.kubernetes?.nodes.map((n) => n.name),
        ['garden-1'],
      );
      assert.ok(
        s.kubernetes?.workloads.some((w) => w.kind === 'Deployment' && w.namespace === 'supabase' && w.ready === 0),
        JSON.stringify(s.kubernetes?.workloads),
      );
    });

    it('patroni-etcd-v2: names a Spilo StatefulSet set up for the etcd v2 API', async () => {
      const apps = cp.admin().makeApiClient(AppsV1Api);
      const labels = { app: 'legacy-spilo' };
      await apps.createNamespacedStatefulSet({
        namespace: DB,
        body: {
          metadata: { name: 'postgres' },
          spec: {
            serviceName: 'postgres',
            replicas: 0,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: { containers: [{ name: 'postgres', image: 'spilo', env: [{ name: 'PATRONI_ETCD_HOSTS', value: "'10.0.0.1:2379'" }] }] },
            },
          },
        },
      });
      const f = await doctorUntil('patroni-etcd-v2', 'fail');
      assert.match(f.summary, /StatefulSet database\/postgres configured for the etcd v2 API/);
    });
  });
});
