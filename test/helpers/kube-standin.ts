// A stand-in Kubernetes API server for tests. It speaks the real REST protocol
// (paths, verbs, resourceVersion, 404/409 Status objects, merge patch, label
// selectors) for the few resources GardenOS uses, and @kubernetes/client-node
// talks to it as to a real one. To be replaced: a real control plane can be
// built here from k8s.io/kubernetes on the Go module proxy (the issue "A real
// Kubernetes in the tests"); no registry lacks it. It enforces no RBAC,
// admission, defaulting or field ownership.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

type Obj = { metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
}

export interface KubeStandIn {
  url: string;
  kubeConfig(): KubeConfig;
  /**
   * The stored object at an item path such as /api/v1/namespaces/db/endpoints/postgres-primary;
   * cluster-scoped ones as /api/v1/namespaces/-/nodes/node1 (see `clusterPath`).
   */
  get(path: string): Obj | undefined;
  put(path: string, obj: Obj): void;
  /** Answers the next request matching method and path with 409 Conflict (as if another writer won). */
  conflictNext(method: string, path: string): void;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const ROUTE = /^\/(api\/v1|apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/;
/** Cluster-scoped resources: stored under the namespace "-", which no real namespace is called. */
const CLUSTER_ROUTE = /^\/(api\/v1|apis\/[^/]+\/[^/]+)\/(nodes|storageclasses|namespaces|clusterroles|clusterrolebindings|persistentvolumes)(?:\/([^/]+))?$/;

/** Discovery (GET /api/v1, /apis/<group>/<version>): the kinds the platform uses, as a real API server lists them. */
const KINDS: Record<string, [kind: string, name: string, namespaced: boolean][]> = {
  v1: [
    ['Namespace', 'namespaces', false], ['Node', 'nodes', false], ['PersistentVolume', 'persistentvolumes', false],
    ['ServiceAccount', 'serviceaccounts', true], ['ConfigMap', 'configmaps', true], ['Secret', 'secrets', true], ['Service', 'services', true],
    ['Endpoints', 'endpoints', true], ['PersistentVolumeClaim', 'persistentvolumeclaims', true], ['Pod', 'pods', true],
  ],
  'apps/v1': [['Deployment', 'deployments', true], ['StatefulSet', 'statefulsets', true]],
  'rbac.authorization.k8s.io/v1': [['Role', 'roles', true], ['RoleBinding', 'rolebindings', true], ['ClusterRole', 'clusterroles', false], ['ClusterRoleBinding', 'clusterrolebindings', false]],
  'policy/v1': [['PodDisruptionBudget', 'poddisruptionbudgets', true]],
  'storage.k8s.io/v1': [['StorageClass', 'storageclasses', false]],
  'networking.k8s.io/v1': [['Ingress', 'ingresses', true]],
  'coordination.k8s.io/v1': [['Lease', 'leases', true]],
  'discovery.k8s.io/v1': [['EndpointSlice', 'endpointslices', true]],
};
const DISCOVERY = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))$/;
const CLUSTER_SCOPE = '-';

function merge(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof target[k] === 'object' && target[k] !== null) merge(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    else target[k] = v;
  }
  return target;
}

function matches(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return labels?.[k!.trim()] === v?.trim();
  });
}

async function body(req: IncomingMessage): Promise<Obj> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj) : {};
}

export async function startKubeStandIn(): Promise<KubeStandIn> {
  const store = new Map<string, Obj>();
  const conflicts: string[] = [];
  const requests: RecordedRequest[] = [];
  let rv = 1000;

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const send = (status: number, obj: unknown) => {
      requests.push({ method: req.method ?? '', path: url.pathname, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    const fail = (status: number, reason: string, message: string) => send(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code: status });
    const d = DISCOVERY.exec(url.pathname);
    if (d && req.method === 'GET') {
      const gv = d[1] ?? d[2]!;
      const kinds = KINDS[gv];
      if (!kinds) return fail(404, 'NotFound', `no API group version ${gv}`);
      return send(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources: kinds.map(([kind, name, namespaced]) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] })) });
    }
    const cm = CLUSTER_ROUTE.exec(url.pathname);
    const m = cm ? [cm[0], cm[1], CLUSTER_SCOPE, cm[2], cm[3]] : ROUTE.exec(url.pathname);
    if (!m) return fail(404, 'NotFound', `no route ${url.pathname}`);
    const [, group, ns, resource, name] = m;
    const itemPath = (n: string) => `/${group}/namespaces/${ns}/${resource}/${n}`;
    const conflictAt = conflicts.indexOf(`${req.method} ${url.pathname}`);
    if (conflictAt >= 0) {
      conflicts.splice(conflictAt, 1);
      return fail(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    const b = req.method === 'GET' ? {} : await body(req);
    if (!name) {
      if (req.method === 'GET') {
        const items = [...store.entries()].filter(([p, o]) => p.startsWith(`/${group}/namespaces/${ns}/${resource}/`) && matches(o.metadata?.labels, url.searchParams.get('labelSelector'))).map(([, o]) => o);
        return send(200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items });
      }
      if (req.method === 'POST') {
        const n = b.metadata?.name ?? '';
        if (store.has(itemPath(n))) return fail(409, 'AlreadyExists', `${resource} "${n}" already exists`);
        const obj = { ...b, metadata: { ...b.metadata, namespace: ns, resourceVersion: String(++rv), uid: `uid-${rv}` } };
        store.set(itemPath(n), obj);
        return send(201, obj);
      }
      return fail(405, 'MethodNotAllowed', `${req.method} on a collection`);
    }
    const path = itemPath(name);
    const current = store.get(path);
    // Server-side apply (PATCH application/apply-patch+yaml): creates what is missing, else sets the applied fields.
    if (req.method === 'PATCH' && (req.headers['content-type'] ?? '').startsWith('application/apply-patch+yaml')) {
      if (!url.searchParams.get('fieldManager')) return fail(422, 'Invalid', 'fieldManager is required for apply patch');
      const base = current ? (structuredClone(current) as Record<string, unknown>) : {};
      const obj = merge(base, b as Record<string, unknown>) as Obj;
      const generation = Number((current?.metadata as { generation?: number } | undefined)?.generation ?? 0) + (JSON.stringify(current?.spec) === JSON.stringify(obj.spec) ? 0 : 1);
      obj.metadata = { ...obj.metadata, name, ...(ns === CLUSTER_SCOPE ? {} : { namespace: ns }), resourceVersion: String(++rv), uid: current?.metadata?.uid ?? `uid-${rv}`, generation, managedFields: [{ manager: url.searchParams.get('fieldManager'), operation: 'Apply' }] };
      store.set(path, obj);
      return send(current ? 200 : 201, obj);
    }
    if (!current) return fail(404, 'NotFound', `${resource} "${name}" not found`);
    switch (req.method) {
      case 'GET':
        return send(200, current);
      case 'PUT': {
        if (b.metadata?.resourceVersion !== current.metadata?.resourceVersion) {
          return fail(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
        }
        const obj = { ...b, metadata: { ...b.metadata, namespace: ns, resourceVersion: String(++rv), uid: current.metadata?.uid } };
        store.set(path, obj);
        return send(200, obj);
      }
      case 'PATCH': {
        if (!(req.headers['content-type'] ?? '').startsWith('application/merge-patch+json')) return fail(415, 'UnsupportedMediaType', `patch type ${req.headers['content-type']}`);
        const obj = merge(structuredClone(current) as Record<string, unknown>, b as Record<string, unknown>) as Obj;
        obj.metadata = { ...obj.metadata, resourceVersion: String(++rv) };
        store.set(path, obj);
        return send(200, obj);
      }
      default:
        return fail(405, 'MethodNotAllowed', String(req.method));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'standin', server: url, skipTLSVerify: true }],
        users: [{ name: 'router', token: 'standin-token' }],
        contexts: [{ name: 'standin', cluster: 'standin', user: 'router' }],
        currentContext: 'standin',
      });
      return kc;
    },
    get: (p) => store.get(p),
    put: (p, obj) => void store.set(p, { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } }),
    conflictNext: (method, p) => void conflicts.push(`${method} ${p}`),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Where the stand-in keeps a cluster-scoped object, for `get` and `put`. */
export function clusterPath(group: string, resource: string, name: string): string {
  return `/${group}/namespaces/${CLUSTER_SCOPE}/${resource}/${name}`;
}
