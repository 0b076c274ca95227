// What doctor and status read from the Kubernetes API (K3s): nodes, storage
// classes, the database namespace's workloads and the postgres-primary
// endpoints. Read-only calls through @kubernetes/client-node.
import type { KubeConfig, V1Deployment, V1Endpoints, V1Node, V1StatefulSet, V1StorageClass } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { PRIMARY_ROUTE } from '../names.ts';

export interface KubeFacts {
  nodes: V1Node[];
  storageClasses: V1StorageClass[];
  /** The postgres-primary Endpoints the router keeps; null when it does not exist. */
  primaryEndpoints: V1Endpoints | null;
  statefulSets: V1StatefulSet[];
  deployments: V1Deployment[];
}

export const PRIMARY_SERVICE = PRIMARY_ROUTE;

/** A kubeconfig from a file (kubectl's rules for the current context). */
export async function loadKubeConfig(file: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

const notFound = (e: unknown) => (e as { code?: number }).code === 404;

export async function gatherKubeFacts(kc: KubeConfig, config: Config): Promise<KubeFacts> {
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const storage = kc.makeApiClient(k8s.StorageV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const workloadNamespaces = [...new Set([config.namespaces.database, config.namespaces.supabase, config.namespaces.apps, config.namespaces.platform])];
  const [nodes, storageClasses, primaryEndpoints, statefulSets, deployments] = await Promise.all([
    core.listNode().then((l) => l.items),
    storage.listStorageClass().then((l) => l.items),
    core.readNamespacedEndpoints({ name: PRIMARY_SERVICE, namespace: config.namespaces.database }).catch((e) => {
      if (notFound(e)) return null;
      throw e;
    }),
    Promise.all(workloadNamespaces.map((namespace) => apps.listNamespacedStatefulSet({ namespace }).then((l) => l.items))).then((x) => x.flat()),
    Promise.all(workloadNamespaces.map((namespace) => apps.listNamespacedDeployment({ namespace }).then((l) => l.items))).then((x) => x.flat()),
  ]);
  return { nodes, storageClasses, primaryEndpoints, statefulSets, deployments };
}

export interface NodeRow {
  name: string;
  ready: boolean;
  roles: string[];
  version: string;
  taints: string[];
  addresses: string[];
}

export function nodeRows(facts: KubeFacts): NodeRow[] {
  return facts.nodes.map((n) => ({
    name: n.metadata?.name ?? '?',
    ready: n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    roles: Object.keys(n.metadata?.labels ?? {})
      .filter((l) => l.startsWith('node-role.kubernetes.io/'))
      .map((l) => l.slice('node-role.kubernetes.io/'.length)),
    version: n.status?.nodeInfo?.kubeletVersion ?? '-',
    taints: (n.spec?.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`),
    addresses: (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address),
  }));
}

export interface WorkloadRow {
  namespace: string;
  kind: 'StatefulSet' | 'Deployment';
  name: string;
  desired: number;
  ready: number;
}

export function workloadRows(facts: KubeFacts): WorkloadRow[] {
  return [
    ...facts.statefulSets.map((s) => ({
      namespace: s.metadata?.namespace ?? '',
      kind: 'StatefulSet' as const,
      name: s.metadata?.name ?? '',
      desired: s.spec?.replicas ?? 1,
      ready: s.status?.readyReplicas ?? 0,
    })),
    ...facts.deployments.map((d) => ({
      namespace: d.metadata?.namespace ?? '',
      kind: 'Deployment' as const,
      name: d.metadata?.name ?? '',
      desired: d.spec?.replicas ?? 1,
      ready: d.status?.readyReplicas ?? 0,
    })),
  ];
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` in a container of a pod (kubectl exec, through the API server) and returns its output;
 * a non-zero exit, or no end within `timeoutMs`, is thrown with the command's stderr.
 */
export async function execInPod(
  kc: KubeConfig,
  where: { namespace: string; pod: string; container: string },
  command: string[],
  timeoutMs: number,
): Promise<ExecResult> {
  const { Exec } = await import('@kubernetes/client-node');
  const { PassThrough } = await import('node:stream');
  const out = { stdout: '', stderr: '' };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => (out.stdout += c.toString('utf8')));
  stderr.on('data', (c: Buffer) => (out.stderr += c.toString('utf8')));
  const what = `${command.join(' ')} in ${where.namespace}/${where.pod}`;
  let socket: { close(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<ExecResult>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no end within ${timeoutMs} ms${out.stderr ? `: ${out.stderr.trim()}` : ''}`)), timeoutMs);
      new Exec(kc)
        .exec(where.namespace, where.pod, where.container, command, stdout, stderr, null, false, (status) => {
          if (status.status === 'Success') resolve(out);
          else reject(new Error(`${what}: ${out.stderr.trim() || status.message || status.reason || 'failed'}`));
        })
        .then((ws) => {
          socket = ws;
          // A socket closed without a status (the pod went away) is a failure, not a hang until the deadline.
          ws.on('close', () => setTimeout(() => reject(new Error(`${what}: the connection closed without an exit status`)), 100));
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    socket?.close();
  }
}
