// Server-side apply of the whole rendered platform through @kubernetes/client-node,
// against the stand-in Kubernetes API server (no Kubernetes can run here): every
// object created at its real REST path with the apply patch type and GardenOS's
// field manager, rollouts awaited, a second apply idempotent, a stuck rollout named.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { applyManifests } from '../../src/clients/apply.ts';
import { silent } from '../../src/log/events.ts';
import { kustomizationObjects, renderPlatform } from '../../src/platform/render.ts';
import { ensurePlatformPki, ensurePlatformSecrets } from '../../src/platform/secrets.ts';
import { exampleConfig } from '../helpers/fixtures.ts';
import { startKubeStandIn, type KubeStandIn } from '../helpers/kube-standin.ts';

describe('server-side apply of the rendered platform (stand-in API server)', () => {
  let dir: string;
  let kube: KubeStandIn;
  let objects: KubernetesObject[];
  let controller: NodeJS.Timeout;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-apply-'));
    const config = exampleConfig();
    await ensurePlatformSecrets(dir, config);
    await ensurePlatformPki(dir, config);
    const files = await renderPlatform(config, { secretsDir: dir, withSecrets: true });
    objects = kustomizationObjects(files) as KubernetesObject[];
    kube = await startKubeStandIn();
    // The stand-in has no controllers: this plays kube-controller-manager, marking workloads ready
    // (except the one the last test leaves stuck).
    controller = setInterval(() => {
      for (const o of objects.filter((x) => x.kind === 'Deployment' || x.kind === 'StatefulSet')) {
        const path = `/apis/apps/v1/namespaces/${o.metadata!.namespace}/${o.kind === 'Deployment' ? 'deployments' : 'statefulsets'}/${o.metadata!.name}`;
        const live = kube.get(path) as { metadata: { generation?: number; name: string }; spec: { replicas?: number }; status?: unknown } | undefined;
        if (!live || live.metadata.name === 'stuck') continue;
        kube.put(path, { ...live, status: { observedGeneration: live.metadata.generation, replicas: live.spec.replicas, readyReplicas: live.spec.replicas } });
      }
    }, 50);
  });
  after(async () => {
    clearInterval(controller);
    await kube?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates every object at its REST path with the apply patch and field manager, and waits for the rollouts', async () => {
    const r = await applyManifests(kube.kubeConfig(), objects, { report: silent, waitMs: 20_000 });
    assert.equal(r.applied.length, objects.length);
    assert.ok(r.rolledOut.includes('Deployment supabase/gateway'), r.rolledOut.join(', '));
    assert.ok(r.rolledOut.includes('StatefulSet database/gardenos'));
    assert.ok(kube.get('/api/v1/namespaces/-/namespaces/database'), 'a cluster-scoped Namespace');
    assert.ok(kube.get('/api/v1/namespaces/database/secrets/postgres-tls'));
    assert.ok(kube.get('/apis/networking.k8s.io/v1/namespaces/apps/ingresses/main-api'));
    const applies = kube.requests.filter((q) => q.method === 'PATCH');
    assert.equal(applies.length, objects.length);
    assert.ok(applies.every((q) => q.status === 201), 'each object created by the apply');
    const sts = kube.get('/apis/apps/v1/namespaces/database/statefulsets/gardenos') as { metadata: { managedFields: { manager: string; operation: string }[] } };
    assert.deepEqual(sts.metadata.managedFields, [{ manager: 'gardenos', operation: 'Apply' }]);
  });

  it('applies again without error, changing nothing', async () => {
    const before = kube.requests.length;
    const r = await applyManifests(kube.kubeConfig(), objects, { report: silent, waitMs: 20_000 });
    assert.equal(r.applied.length, objects.length);
    assert.ok(kube.requests.slice(before).filter((q) => q.method === 'PATCH').every((q) => q.status === 200));
    const sts = kube.get('/apis/apps/v1/namespaces/database/statefulsets/gardenos') as { metadata: { generation: number } };
    assert.equal(sts.metadata.generation, 1, 'an unchanged spec is not a new generation');
  });

  it('names a workload that does not roll out within the deadline', async () => {
    const stuck = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'stuck', namespace: 'apps' }, spec: { replicas: 1, selector: { matchLabels: { app: 'stuck' } }, template: { metadata: { labels: { app: 'stuck' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } } };
    await assert.rejects(applyManifests(kube.kubeConfig(), [stuck], { report: silent, waitMs: 1500 }), /timed out after 2s waiting for Deployment apps\/stuck to roll out/);
  });
});
