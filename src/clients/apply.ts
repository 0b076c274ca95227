// Server-side apply of the rendered manifests through @kubernetes/client-node,
// in the kustomization's order, then a wait for every Deployment and
// StatefulSet to roll out (observed generation current, replicas ready).
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { waitFor } from '../util/wait.ts';

export const FIELD_MANAGER = 'gardenos';

const id = (o: KubernetesObject) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

export interface ApplyResult {
  applied: string[];
  rolledOut: string[];
}

export async function applyManifests(kc: KubeConfig, objects: KubernetesObject[], opts: { report: Reporter; waitMs: number }): Promise<ApplyResult> {
  const k8s = await import('@kubernetes/client-node');
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  const applied: string[] = [];
  for (const obj of objects) {
    try {
      // force: GardenOS owns these fields; a conflicting manager (a hand edit) is overridden, as `kubectl apply --server-side --force-conflicts`.
      await client.patch(structuredClone(obj), undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
    } catch (e) {
      const body = (e as { body?: unknown }).body;
      const message = typeof body === 'string' ? body : body ? JSON.stringify(body) : describe(e);
      throw new GardenError('BACKEND_UNAVAILABLE', `applying ${id(obj)} failed`, { details: [message.slice(0, 400)], hint: 'the objects before it are applied; fix the cause and run `gardenos up` again' });
    }
    applied.push(id(obj));
  }
  opts.report({ kind: 'info', message: `applied ${applied.length} objects (server-side, field manager ${FIELD_MANAGER})` });

  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const workloads = objects.filter((o) => (o.kind === 'Deployment' || o.kind === 'StatefulSet') && o.metadata?.name && o.metadata.namespace);
  const rolledOut: string[] = [];
  for (const w of workloads) {
    const name = w.metadata!.name!;
    const namespace = w.metadata!.namespace!;
    await waitFor(
      `${id(w)} to roll out`,
      async () => {
        const live = w.kind === 'Deployment' ? await apps.readNamespacedDeployment({ name, namespace }) : await apps.readNamespacedStatefulSet({ name, namespace });
        const want = live.spec?.replicas ?? 1;
        const ready = live.status?.readyReplicas ?? 0;
        const observed = (live.status?.observedGeneration ?? 0) >= (live.metadata?.generation ?? 0);
        if (!observed || ready < want) throw new Error(`${ready}/${want} ready${observed ? '' : ', new generation not observed yet'}`);
        return true;
      },
      { timeoutMs: opts.waitMs, intervalMs: 1000 },
    );
    rolledOut.push(id(w));
    opts.report({ kind: 'info', message: `${id(w)} rolled out` });
  }
  return { applied, rolledOut };
}
