// The one judgement of the facts every status shares (local and the platform): what degrades etcd, the
// PostgreSQL members' leadership, and the Kubernetes side. Pure: facts in, problems out, worded for a person.
import type { EtcdMemberStatus, KubernetesStatus, PostgresMemberStatus } from './probes.ts';

/** etcd: a member that is not healthy, and no leader at all (Patroni cannot renew its leader key then). */
export function etcdProblems(etcd: readonly EtcdMemberStatus[]): string[] {
  return [
    ...etcd.filter((e) => !e.healthy).map((e) => `etcd ${e.name} is not healthy: ${e.error ?? 'no answer'}`),
    ...(etcd.some((e) => e.leader) ? [] : ['etcd has no leader']),
  ];
}

/** Exactly one leader; in synchronous mode, a synchronous standby beside it. */
export function leaderProblems(members: readonly Pick<PostgresMemberStatus, 'role'>[], opts: { synchronous: boolean }): string[] {
  const leaders = members.filter((m) => m.role === 'leader').length;
  if (leaders !== 1) return [leaders === 0 ? 'PostgreSQL has no leader' : `PostgreSQL has ${leaders} leaders`];
  return opts.synchronous && !members.some((m) => m.role === 'sync_standby') ? ['synchronous mode is on but there is no synchronous standby'] : [];
}

/** What degrades a status on the Kubernetes side: the API silent, a node not Ready, a workload short of replicas. */
export function kubernetesProblems(k: KubernetesStatus): string[] {
  if (!k.reachable) return [`the Kubernetes API does not answer: ${k.error ?? ''}`];
  return [
    ...k.nodes.filter((n) => !n.ready).map((n) => `node ${n.name} is not Ready`),
    ...k.workloads.filter((w) => w.ready < w.desired).map((w) => `${w.kind} ${w.namespace}/${w.name}: ${w.ready}/${w.desired} ready`),
  ];
}
