// The facts `status` (local and the platform), the dashboard and `doctor` share: each etcd member as
// its own API reports it, each PostgreSQL member as Patroni reports it, and the Kubernetes side. Gathered
// here or by the callers' own probes; judged in judge.ts, the one place that says what degrades them.
import { EtcdClient } from '../clients/etcd.ts';
import type { NodeRow, WorkloadRow } from '../clients/kubernetes.ts';
import type { TlsFiles } from '../render/files.ts';

export interface EtcdMemberStatus {
  name: string;
  endpoint: string;
  healthy: boolean;
  leader: boolean;
  version?: string;
  dbSizeBytes?: number;
  error?: string;
}

export interface PostgresMemberStatus {
  name: string;
  host: string;
  /** leader, sync_standby, replica — or unknown when its Patroni does not answer. */
  role: string;
  state: string;
  timeline: number | null;
  lagBytes: number | null;
  apiReachable: boolean;
  /** Why its Patroni does not answer, when that is known: not running, or a cause from its log. */
  down?: string;
}

export interface KubernetesStatus {
  reachable: boolean;
  nodes: NodeRow[];
  workloads: WorkloadRow[];
  error?: string;
}

/** Each etcd member's status row, by asking every endpoint with the given client identity. */
export async function etcdMemberStatuses(endpoints: string[], tls: TlsFiles, names: string[], timeoutMs: number): Promise<EtcdMemberStatus[]> {
  const client = new EtcdClient(endpoints, tls, { timeoutMs });
  try {
    const statuses = await client.statuses();
    return statuses.map((s, i) => ({
      name: names[i]!,
      endpoint: s.endpoint,
      healthy: s.ok,
      leader: s.isLeader ?? false,
      ...(s.version ? { version: s.version } : {}),
      ...(s.dbSizeBytes !== undefined ? { dbSizeBytes: s.dbSizeBytes } : {}),
      ...(s.error ? { error: s.error } : {}),
    }));
  } finally {
    client.close();
  }
}
