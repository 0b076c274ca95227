// Server-side apply of the rendered manifests through @kubernetes/client-node,
// in the kustomization's order, then a wait for every Deployment and
// StatefulSet to roll out (observed generation current, replicas ready).
// Objects another controller writes after GardenOS made them (the router's
// Endpoints, EndpointSlices and Lease) carry CREATE_ONLY: they are created when
// missing and otherwise left alone, so a second `up` never resets the route.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { APPLY_ANNOTATION, CREATE_ONLY } from '../render/kube/names.ts';
import { waitFor } from '../util/wait.ts';

export const FIELD_MANAGER = 'gardenos';

const id = (o: KubernetesObject) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

export interface ApplyResult {
  applied: string[];
  /** Create-only objects that existed already and were left as their owner keeps them. */
  leftAlone: string[];
}

function failure(obj: KubernetesObject, e: unknown): GardenError {
  const body = (e as { body?: unknown }).body;
  const message = typeof body === 'string' ? body : body ? JSON.stringify(body) : describe(e);
  return new GardenError('BACKEND_UNAVAILABLE', `applying ${id(obj)} failed`, { details: [message.slice(0, 400)], hint: 'the objects before it are applied; fix the cause and run `gardenos up` again' });
}

/** Applies every object in order (server-side, GardenOS's field manager); does not wait for rollouts. */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[], opts: { report: Reporter }): Promise<ApplyResult> {
  const k8s = await import('@kubernetes/client-node');
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  const applied: string[] = [];
  const leftAlone: string[] = [];
  for (const obj of objects) {
    try {
      if (obj.metadata?.annotations?.[APPLY_ANNOTATION] === CREATE_ONLY) {
        const exists = await client.read({ apiVersion: obj.apiVersion!, kind: obj.kind!, metadata: { name: obj.metadata.name!, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) } }).then(
          () => true,
          (e) => {
            if ((e as { code?: number }).code === 404) return false;
            throw e;
          },
        );
        if (exists) {
          leftAlone.push(id(obj));
          continue;
        }
        await client.create(structuredClone(obj), undefined, undefined, FIELD_MANAGER);
      } else {
        // force: GardenOS owns these fields; a conflicting manager (a hand edit) is overridden, as `kubectl apply --server-side --force-conflicts`.
        await client.patch(structuredClone(obj), undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
      }
    } catch (e) {
      throw failure(obj, e);
    }
    applied.push(id(obj));
  }
  opts.report({ kind: 'info', message: `applied ${applied.length} objects (server-side, field manager ${FIELD_MANAGER})${leftAlone.length ? `; left ${leftAlone.length} create-only objects as their owner keeps them` : ''}` });
  return { applied, leftAlone };
}

/** Waits for every Deployment and StatefulSet among `objects` to roll out, in order. */
export async function awaitRollouts(kc: KubeConfig, objects: KubernetesObject[], opts: { report: Reporter; waitMs: number }): Promise<string[]> {
  const k8s = await import('@kubernetes/client-node');
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
  return rolledOut;
}
