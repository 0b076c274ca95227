// `gardenos status` for the production platform in gardenos.yaml: etcd through
// its API with GardenOS's client certificate, each Patroni member's REST API,
// HAProxy's stats on every haproxy node, and — with a kubeconfig — K3s nodes,
// workloads and where `postgres-primary` points. Probes run in parallel with a
// deadline each; one part that does not answer degrades its rows only. What degrades the shared parts
// (etcd, leadership, Kubernetes) is judged in health/judge.ts, as for the local cluster.
import { join } from 'node:path';
import { statsOverHttp, type HaproxyServerStat } from '../clients/haproxy.ts';
import { PatroniClient, type PatroniClusterView } from '../clients/patroni.ts';
import type { Config } from '../config/schema.ts';
import { describe } from '../errors.ts';
import { etcdProblems, kubernetesProblems, leaderProblems } from '../health/judge.ts';
import { etcdMemberStatuses, type EtcdMemberStatus, type KubernetesStatus, type PostgresMemberStatus } from '../health/probes.ts';
import { etcdClientUrls, hostPort, productionTopology } from '../render/topology.ts';
import { withTimeout } from '../util/wait.ts';
import { readPlatformSecrets } from './secrets.ts';
import { PRIMARY_ROUTE } from '../names.ts';

export interface PlatformStatus {
  cluster: string;
  healthy: boolean;
  problems: string[];
  etcd: EtcdMemberStatus[];
  members: PostgresMemberStatus[];
  haproxy: { node: string; reachable: boolean; servers: HaproxyServerStat[]; error?: string }[];
  kubernetes?: KubernetesStatus & { primaryEndpoint?: string[] | null };
}

export async function platformStatus(config: Config, opts: { secretsDir: string; kubeconfig?: string; timeoutMs?: number }): Promise<PlatformStatus> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const topo = productionTopology(config);
  const pki = join(opts.secretsDir, 'pki');
  const secrets = await readPlatformSecrets(opts.secretsDir);

  const etcdProbe = () =>
    etcdMemberStatuses(
      etcdClientUrls(config, topo),
      { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
      topo.etcd.map((m) => m.name),
      timeoutMs,
    );
  const patroniProbe = () =>
    Promise.all(
      topo.postgres.map((m) =>
        withTimeout(
          new PatroniClient(`https://${hostPort(m.address, config.postgres.patroniPort)}`, { caFile: join(pki, 'ca.crt'), timeoutMs }).cluster(),
          timeoutMs,
          `Patroni ${m.name}`,
        ).catch(() => undefined),
      ),
    );
  const haproxyProbe = () =>
    Promise.all(
      config.nodes
        .filter((n) => n.roles.includes('haproxy'))
        .map(async (n) => {
          try {
            const servers = await statsOverHttp(
              `http://${hostPort(n.address.private, config.haproxy.ports.stats)}/`,
              { user: config.haproxy.statsUser, password: secrets.statsPassword },
              timeoutMs,
            );
            return { node: n.name, reachable: true, servers };
          } catch (e) {
            return { node: n.name, reachable: false, servers: [] as HaproxyServerStat[], error: describe(e) };
          }
        }),
    );
  const kubeProbe = async (): Promise<PlatformStatus['kubernetes']> => {
    if (!opts.kubeconfig) return undefined;
    const kube = await import('../clients/kubernetes.ts');
    try {
      const facts = await withTimeout(kube.gatherKubeFacts(await kube.loadKubeConfig(opts.kubeconfig), config), timeoutMs * 3, 'the Kubernetes API');
      const ep = facts.primaryEndpoints;
      return {
        reachable: true,
        nodes: kube.nodeRows(facts),
        workloads: kube.workloadRows(facts),
        primaryEndpoint: ep ? (ep.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)) : null,
      };
    } catch (e) {
      return { reachable: false, nodes: [], workloads: [], error: describe(e) };
    }
  };

  const [etcd, views, haproxy, kubernetes] = await Promise.all([
    withTimeout(etcdProbe(), timeoutMs + 1000, 'etcd').catch((e) =>
      topo.etcd.map((m, i) => ({ name: m.name, endpoint: etcdClientUrls(config, topo)[i]!, healthy: false, leader: false, error: describe(e) })),
    ),
    patroniProbe(),
    haproxyProbe(),
    kubeProbe(),
  ]);
  const view: PatroniClusterView | undefined = views.find((v) => v !== undefined);
  // On Kubernetes, Patroni names members after their pods; each reports the address it runs at.
  const members: PostgresMemberStatus[] = topo.postgres.map((m, i) => {
    const seen = view?.members.find((x) => x.host === m.address || x.name === m.name);
    return {
      name: seen?.name ?? m.name,
      host: m.address,
      role: seen?.role ?? 'unknown',
      state: seen?.state ?? 'unreachable',
      timeline: seen?.timeline ?? null,
      lagBytes: typeof seen?.lag === 'number' ? seen.lag : seen?.role === 'leader' ? 0 : null,
      apiReachable: views[i] !== undefined,
    };
  });

  const problems: string[] = [];
  problems.push(...etcdProblems(etcd));
  const leaders = members.filter((m) => m.role === 'leader');
  problems.push(...leaderProblems(members, { synchronous: config.postgres.synchronousMode }));
  for (const m of members) if (!m.apiReachable) problems.push(`Patroni on ${m.host} does not answer on its REST API`);
  for (const h of haproxy) {
    if (!h.reachable) problems.push(`HAProxy on ${h.node} does not answer: ${h.error ?? ''}`);
    else if (leaders[0] && !h.servers.some((s) => s.proxy === PRIMARY_ROUTE && s.status.startsWith('UP')))
      problems.push(`HAProxy on ${h.node} has no primary UP`);
  }
  if (kubernetes) {
    problems.push(...kubernetesProblems(kubernetes));
    if (kubernetes.reachable && leaders[0] && JSON.stringify(kubernetes.primaryEndpoint) !== JSON.stringify([leaders[0].host])) {
      problems.push(
        `postgres-primary points at ${kubernetes.primaryEndpoint ? `[${kubernetes.primaryEndpoint.join(', ')}]` : 'nothing (missing)'}, the leader is at ${leaders[0].host}`,
      );
    }
  }
  return { cluster: config.cluster.name, healthy: problems.length === 0, problems, etcd, members, haproxy, ...(kubernetes ? { kubernetes } : {}) };
}
