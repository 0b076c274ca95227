// Server-side apply of the rendered manifests through @kubernetes/client-node,
// in the kustomization's order (after a preflight that finds what would stop it
// half-way), then a wait for every Deployment, StatefulSet and DaemonSet to roll
// out (observed generation current, replicas ready).
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
  return new GardenError('BACKEND_UNAVAILABLE', `applying ${id(obj)} failed`, {
    details: [message.slice(0, 400)],
    hint: 'the objects before it are applied; fix the cause and run `gardenos up` again',
  });
}

/** What a kind that the cluster does not serve needs: the add-ons GardenOS renders objects for but does not install. */
const PROVIDERS: Record<string, string> = {
  'cert-manager.io': 'hosts with tls: acme need cert-manager (install it, then run `gardenos up` again), or choose tls: internal or secret',
};

/**
 * What would fail half-way, found before anything is applied: an API group this cluster does not serve (an
 * add-on missing), and an Ingress naming a TLS Secret that is neither rendered, nor issued by a rendered
 * Certificate, nor in the cluster.
 */
async function preflight(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const groups = await kc
    .makeApiClient(k8s.ApisApi)
    .getAPIVersions()
    .catch((e: unknown) => {
      throw new GardenError('BACKEND_UNAVAILABLE', 'could not read which APIs the cluster serves; nothing was applied', {
        details: [describe(e).slice(0, 400)],
      });
    });
  const served = new Set(groups.groups.flatMap((g) => g.versions.map((v) => v.groupVersion)));
  for (const o of objects) {
    if (!o.apiVersion!.includes('/') || served.has(o.apiVersion!)) continue;
    const group = o.apiVersion!.split('/')[0]!;
    throw new GardenError('BACKEND_UNAVAILABLE', `${id(o)} is ${o.apiVersion}, which this cluster does not serve; nothing was applied`, {
      hint: PROVIDERS[group] ?? `install what serves ${o.apiVersion} first`,
    });
  }
  const provided = new Set([
    ...objects.filter((o) => o.kind === 'Secret').map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`),
    ...objects.filter((o) => o.kind === 'Certificate').map((o) => `${o.metadata?.namespace}/${(o as { spec?: { secretName?: string } }).spec?.secretName}`),
  ]);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
    const namespace = ing.metadata!.namespace!;
    for (const t of (ing as { spec?: { tls?: { secretName?: string; hosts?: string[] }[] } }).spec?.tls ?? []) {
      if (!t.secretName || provided.has(`${namespace}/${t.secretName}`)) continue;
      const exists = await core.readNamespacedSecret({ name: t.secretName, namespace }).then(
        () => true,
        (e: unknown) => {
          if ((e as { code?: number }).code === 404) return false;
          throw failure(ing, e);
        },
      );
      if (!exists) {
        throw new GardenError(
          'CONFIG_INVALID',
          `${id(ing)} serves ${t.hosts?.join(', ')} with TLS Secret ${t.secretName}, which is not in namespace ${namespace}; nothing was applied`,
          {
            hint: `create it (kubectl -n ${namespace} create secret tls ${t.secretName} --cert=… --key=…), or give the host tls: internal or acme`,
          },
        );
      }
    }
  }
}

/** Applies every object in order (server-side, GardenOS's field manager); does not wait for rollouts. */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[], opts: { report: Reporter }): Promise<ApplyResult> {
  const k8s = await import('@kubernetes/client-node');
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  await preflight(kc, objects);
  const applied: string[] = [];
  const leftAlone: string[] = [];
  for (const obj of objects) {
    try {
      if (obj.metadata?.annotations?.[APPLY_ANNOTATION] === CREATE_ONLY) {
        const exists = await client
          .read({
            apiVersion: obj.apiVersion!,
            kind: obj.kind!,
            metadata: { name: obj.metadata.name!, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) },
          })
          .then(
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
  opts.report({
    kind: 'info',
    message: `applied ${applied.length} objects (server-side, field manager ${FIELD_MANAGER})${leftAlone.length ? `; left ${leftAlone.length} create-only objects as their owner keeps them` : ''}`,
  });
  return { applied, leftAlone };
}

/** Waits for every Deployment, StatefulSet and DaemonSet among `objects` to roll out, in order. */
export async function awaitRollouts(kc: KubeConfig, objects: KubernetesObject[], opts: { report: Reporter; waitMs: number }): Promise<string[]> {
  const k8s = await import('@kubernetes/client-node');
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const workloads = objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind!) && o.metadata?.name && o.metadata.namespace);
  const rolledOut: string[] = [];
  for (const w of workloads) {
    const name = w.metadata!.name!;
    const namespace = w.metadata!.namespace!;
    await waitFor(
      `${id(w)} to roll out`,
      async () => {
        let want: number;
        let ready: number;
        let live: { metadata?: { generation?: number }; status?: { observedGeneration?: number } };
        if (w.kind === 'DaemonSet') {
          const ds = await apps.readNamespacedDaemonSet({ name, namespace });
          // One pod per eligible node, each updated to this generation.
          [live, want, ready] = [ds, ds.status?.desiredNumberScheduled ?? 0, Math.min(ds.status?.numberReady ?? 0, ds.status?.updatedNumberScheduled ?? 0)];
        } else {
          const d =
            w.kind === 'Deployment' ? await apps.readNamespacedDeployment({ name, namespace }) : await apps.readNamespacedStatefulSet({ name, namespace });
          [live, want, ready] = [d, d.spec?.replicas ?? 1, d.status?.readyReplicas ?? 0];
        }
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
