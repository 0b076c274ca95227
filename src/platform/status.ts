// `gardenos status` for the production platform in gardenos.yaml: etcd through
// its API with GardenOS's client certificate, each Patroni member's REST API,
// HAProxy's stats on every haproxy node, and — with a kubeconfig — K3s nodes,
// workloads and where `postgres-primary` points, and (backups.enabled) the repository's newest backup and last
// restore test, read in its pod, and the leader's WAL archiving (pg_stat_archiver, read in the leader's pod). Probes run in parallel with a
// deadline each; one part that does not answer degrades its rows only. What degrades the shared parts
// (etcd, leadership, Kubernetes) is judged in health/judge.ts, as for the local cluster.
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { statsOverHttp, type HaproxyServerStat } from '../clients/haproxy.ts';
import { PatroniClient, type PatroniClusterView } from '../clients/patroni.ts';
import type { Config } from '../config/schema.ts';
import { describe } from '../errors.ts';
import { etcdProblems, kubernetesProblems, leaderProblems } from '../health/judge.ts';
import { etcdMemberStatuses, type EtcdMemberStatus, type KubernetesStatus, type PostgresMemberStatus } from '../health/probes.ts';
import { etcdClientUrls, hostPort, productionTopology } from '../render/topology.ts';
import { withTimeout } from '../util/wait.ts';
import type { PlatformVerify } from './backups.ts';
import { archivingProblem, type ArchiverState } from '../ops/pgbackrest.ts';
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
  /** backups.enabled, with a kubeconfig: what the repository holds (pgbackrest info in its pod) and the last restore test. */
  backups?: PlatformBackupStatus;
}

export interface PlatformBackupStatus {
  reachable: boolean;
  error?: string;
  newest: { label: string; type: string; stoppedAt: string; ageHours: number } | null;
  /** The newest WAL segment in the repository. */
  archivedTo: string | null;
  lastVerify: PlatformVerify | null;
  /** The leader's archiver, asked in its pod; null when there is no leader or its pod did not answer. */
  archiver?: ArchiverState | null;
}

/** What is wrong with the backups: the newest too old (monitoring.backupAlertAfterHours, as the alert), a failed or old restore test. */
export function backupProblems(b: PlatformBackupStatus, config: Config, now = Date.now()): string[] {
  if (!b.reachable) return [`the backup repository cannot be read: ${b.error ?? 'no answer'}`];
  const out: string[] = [];
  const m = config.monitoring;
  if (b.newest && b.newest.ageHours > m.backupAlertAfterHours)
    out.push(
      `the newest backup ${b.newest.label} is ${b.newest.ageHours.toFixed(0)} h old (more than ${m.backupAlertAfterHours} h): are the CronJobs running?`,
    );
  if (b.lastVerify && !b.lastVerify.ok) out.push(`the last restore test, of ${b.lastVerify.label}, failed: ${b.lastVerify.error ?? 'see its Job'}`);
  else if (b.lastVerify && now - Date.parse(b.lastVerify.at) > m.restoreTestAlertAfterDays * 86_400_000)
    out.push(`the last restore test, of ${b.lastVerify.label} at ${b.lastVerify.at}, is more than ${m.restoreTestAlertAfterDays} days old`);
  return out;
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
  // The kubeconfig (only asked for when there is one), read once for every probe that needs it; its failure is each probe's to report.
  let kubeConfig: Promise<KubeConfig> | undefined;
  const kc = () => (kubeConfig ??= import('../clients/kubernetes.ts').then((kube) => kube.loadKubeConfig(opts.kubeconfig!)));
  const kubeProbe = async (): Promise<PlatformStatus['kubernetes']> => {
    if (!opts.kubeconfig) return undefined;
    const kube = await import('../clients/kubernetes.ts');
    try {
      const facts = await withTimeout(kube.gatherKubeFacts(await kc(), config), timeoutMs * 3, 'the Kubernetes API');
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

  const backupProbe = async (): Promise<PlatformBackupStatus | undefined> => {
    if (!opts.kubeconfig || !config.backups.enabled) return undefined;
    try {
      const { platformBackupList } = await import('./backups.ts');
      const list = await withTimeout(platformBackupList(await kc(), config), timeoutMs * 5, 'the backup repository');
      const b = list.backups.at(-1);
      return {
        reachable: true,
        newest: b ? { label: b.label, type: b.type, stoppedAt: b.stoppedAt, ageHours: (Date.now() - Date.parse(b.stoppedAt)) / 3_600_000 } : null,
        archivedTo: list.archive.max,
        lastVerify: list.lastVerify,
      };
    } catch (e) {
      return { reachable: false, error: describe(e), newest: null, archivedTo: null, lastVerify: null };
    }
  };

  const [etcd, views, haproxy, kubernetes, backups] = await Promise.all([
    withTimeout(etcdProbe(), timeoutMs + 1000, 'etcd').catch((e) =>
      topo.etcd.map((m, i) => ({ name: m.name, endpoint: etcdClientUrls(config, topo)[i]!, healthy: false, leader: false, error: describe(e) })),
    ),
    patroniProbe(),
    haproxyProbe(),
    kubeProbe(),
    backupProbe(),
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
  if (backups && opts.kubeconfig && leaders[0]) {
    const { platformArchiver } = await import('./backups.ts');
    const leader = leaders[0].name;
    backups.archiver = await withTimeout(
      kc().then((k) => platformArchiver(k, config, leader, timeoutMs * 5)),
      timeoutMs * 5,
      "the leader's archiver",
    ).catch(() => null);
    if (backups.archiver?.failing)
      problems.push(
        archivingProblem(backups.archiver, ` on ${leaders[0].name}`, `\`kubectl -n ${config.namespaces.database} logs ${leaders[0].name} -c postgres\``),
      );
  }
  if (backups) problems.push(...backupProblems(backups, config));
  return {
    cluster: config.cluster.name,
    healthy: problems.length === 0,
    problems,
    etcd,
    members,
    haproxy,
    ...(kubernetes ? { kubernetes } : {}),
    ...(backups ? { backups } : {}),
  };
}
