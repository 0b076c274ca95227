// `gardenos local status`: facts from the services' own APIs (etcd v3,
// Patroni REST, HAProxy's admin socket), gathered in parallel with a timeout
// per probe. One part that does not answer degrades its rows, not the command.
import { access } from 'node:fs/promises';
import { HaproxyClient, type HaproxyServerStat } from '../clients/haproxy.ts';
import { PatroniClient, type PatroniClusterView } from '../clients/patroni.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { describe } from '../errors.ts';
import { hostPort } from '../render/topology.ts';
import { getJson, request } from '../util/http.ts';
import { withTimeout } from '../util/wait.ts';
import { connectionUris, etcdEndpoints, patroniUrl, routerUrl, type LocalCluster } from './cluster.ts';
import type { BackupStatus } from './backups.ts';
import { archivingProblem } from '../ops/pgbackrest.ts';
import type { PoolerStatus } from './pooler.ts';
import { readStartLog } from './startup.ts';
import type { ProcessSpec } from './supervisor.ts';
import { PRIMARY_ROUTE } from '../names.ts';
import { etcdProblems, kubernetesProblems, leaderProblems } from '../health/judge.ts';
import { etcdMemberStatuses, type EtcdMemberStatus, type KubernetesStatus, type PostgresMemberStatus } from '../health/probes.ts';

export type { EtcdMemberStatus, KubernetesStatus, PostgresMemberStatus };

export interface LocalStatus {
  cluster: string;
  scope: string;
  stateDir: string;
  healthy: boolean;
  problems: string[];
  /** Connection URIs without the password, which is in `passwordFile` (libpq's PGPASSFILE format). */
  endpoints: { primary: string; replicas: string; stats: string; passwordFile: string; pooled?: string; prometheus?: string };
  etcd: EtcdMemberStatus[];
  members: PostgresMemberStatus[];
  haproxy: { reachable: boolean; servers: HaproxyServerStat[]; error?: string };
  router: RouterStatus;
  /** PgBouncer in front of the primary, when `pooler.enabled`. */
  pooler?: PoolerStatus;
  /** K3s through its API, when a kubeconfig was given. */
  kubernetes?: KubernetesStatus;
  /** pgBackRest's repository, when `backups.enabled`. */
  backups?: BackupStatus;
}

export interface RouterStatus {
  reachable: boolean;
  primary: string | null;
  replicas: string[];
  lastDecision?: string;
  lastChangeAt?: string | null;
  error?: string;
}

/** What the router's /status says (the same shape `gardenos router` serves). */
export interface RouterStatusBody {
  ready: boolean;
  primary: { name: string } | null;
  replicas: { name: string }[];
  lastDecision: string;
  lastChangeAt: string | null;
}

export async function fetchRouterStatus(c: LocalCluster, timeoutMs: number): Promise<RouterStatusBody> {
  return (await getJson<RouterStatusBody>(`${routerUrl(c)}/status`, timeoutMs)).body;
}

async function probeRouter(c: LocalCluster, timeoutMs: number): Promise<RouterStatus> {
  try {
    const s = await fetchRouterStatus(c, timeoutMs);
    return {
      reachable: true,
      primary: s.primary?.name ?? null,
      replicas: s.replicas.map((r) => r.name),
      lastDecision: s.lastDecision,
      lastChangeAt: s.lastChangeAt,
    };
  } catch (e) {
    return { reachable: false, primary: null, replicas: [], error: describe(e) };
  }
}

export interface StatusOptions {
  timeoutMs?: number;
  /** Also read nodes and workloads from the Kubernetes API (a kubeconfig file or a loaded config). */
  kubeconfig?: string | KubeConfig;
}

async function probeKubernetes(c: LocalCluster, kubeconfig: string | KubeConfig, timeoutMs: number): Promise<KubernetesStatus> {
  // Loaded only when asked for: the Kubernetes client costs more start-up than the whole local status.
  const kube = await import('../clients/kubernetes.ts');
  try {
    const kc = typeof kubeconfig === 'string' ? await kube.loadKubeConfig(kubeconfig) : kubeconfig;
    const facts = await withTimeout(kube.gatherKubeFacts(kc, c.config), timeoutMs * 2, 'the Kubernetes API');
    return { reachable: true, nodes: kube.nodeRows(facts), workloads: kube.workloadRows(facts) };
  } catch (e) {
    return { reachable: false, nodes: [], workloads: [], error: describe(e) };
  }
}

async function probePatroni(c: LocalCluster, timeoutMs: number): Promise<{ views: (PatroniClusterView | undefined)[] }> {
  const views = await Promise.all(
    c.topology.postgres.map(async (m) => {
      try {
        return await withTimeout(
          new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs }).cluster(),
          timeoutMs,
          `Patroni ${m.name}`,
        );
      } catch {
        return undefined;
      }
    }),
  );
  return { views };
}

/** Why a member's Patroni does not answer: its process is gone, or its log since the last start says why. */
async function whyDown(c: LocalCluster, spec: ProcessSpec): Promise<string> {
  if ((await c.supervisor.pid(spec)) === undefined) return 'not running';
  const { causes } = await readStartLog(spec);
  const cause = causes.findLast((x) => x.fatal) ?? causes.at(-1);
  return cause ? `running, but ${cause.summary}` : 'running, not answering yet';
}

export async function gatherStatus(c: LocalCluster, opts: StatusOptions = {}): Promise<LocalStatus> {
  const timeoutMs = opts.timeoutMs ?? 1500;
  const haproxy = new HaproxyClient(c.layout.haproxy.adminSocket, { timeoutMs });
  const [etcd, patroni, hap, router, kubernetes, pooler, prometheus, backups] = await Promise.all([
    withTimeout(
      etcdMemberStatuses(
        etcdEndpoints(c),
        c.layout.client,
        c.topology.etcd.map((m) => m.name),
        timeoutMs,
      ),
      timeoutMs + 500,
      'etcd',
    ).catch((e) => c.topology.etcd.map((m, i) => ({ name: m.name, endpoint: etcdEndpoints(c)[i]!, healthy: false, leader: false, error: describe(e) }))),
    probePatroni(c, timeoutMs),
    haproxy.stats().then(
      (servers) => ({ reachable: true, servers }),
      (e) => ({ reachable: false, servers: [] as HaproxyServerStat[], error: describe(e) }),
    ),
    probeRouter(c, timeoutMs),
    opts.kubeconfig ? probeKubernetes(c, opts.kubeconfig, timeoutMs) : undefined,
    c.config.pooler.enabled ? import('./pooler.ts').then((p) => p.poolerStatus(c, timeoutMs)) : undefined,
    // Prometheus, when monitoring is on: ready, or why not.
    c.config.monitoring.enabled
      ? request(`http://${hostPort(c.topology.loadBalancer, c.config.monitoring.port)}/-/ready`, { timeoutMs }).then(
          (r) => (r.status === 200 ? undefined : `answers ${r.status}`),
          (e: unknown) => describe(e),
        )
      : undefined,
    c.config.backups.enabled ? import('./backups.ts').then((b) => b.backupStatus(c, timeoutMs)) : undefined,
  ]);

  // The cluster view from the first member that answers; each member's own answer says whether its API is up.
  const view = patroni.views.find((v) => v !== undefined);
  const members: PostgresMemberStatus[] = await Promise.all(
    c.topology.postgres.map(async (m, i) => {
      const seen = view?.members.find((x) => x.name === m.name);
      const apiReachable = patroni.views[i] !== undefined;
      return {
        name: m.name,
        host: m.address,
        role: seen?.role ?? 'unknown',
        state: seen?.state ?? 'unreachable',
        timeline: seen?.timeline ?? null,
        lagBytes: typeof seen?.lag === 'number' ? seen.lag : seen?.role === 'leader' ? 0 : null,
        apiReachable,
        ...(apiReachable ? {} : { down: await whyDown(c, c.specs.patroni[i]!) }),
      };
    }),
  );

  // Most fundamental first: state, then etcd (Patroni needs it), then each member, then what follows from them.
  const problems: string[] = [];
  if (
    !(await access(c.layout.root).then(
      () => true,
      () => false,
    ))
  ) {
    problems.push(`cluster ${c.config.cluster.name} has not been set up in ${c.layout.root}: run \`gardenos local up\``);
  }
  problems.push(...etcdProblems(etcd));
  for (const m of members) {
    if (!m.apiReachable) problems.push(`Patroni ${m.name} does not answer on its REST API (${m.down})`);
    else if (m.state !== 'running' && m.state !== 'streaming') problems.push(`PostgreSQL ${m.name} is ${m.state}`);
  }
  const leaders = members.filter((m) => m.role === 'leader');
  problems.push(...leaderProblems(members, { synchronous: c.config.postgres.synchronousMode }));
  if (!hap.reachable) problems.push(`HAProxy does not answer: ${'error' in hap ? hap.error : ''}`);
  else {
    const up = hap.servers.filter((s) => s.proxy === PRIMARY_ROUTE && s.status.startsWith('UP')).map((s) => s.server);
    const leader = leaders[0]?.name;
    if (up.length !== 1 || up[0] !== leader) problems.push(`HAProxy primary backend routes to [${up.join(', ')}], leader is ${leader ?? 'none'}`);
  }

  if (!router.reachable) problems.push(`the router does not answer: ${router.error ?? ''}`);
  else if (router.primary !== (leaders[0]?.name ?? null))
    problems.push(`the router routes writes to ${router.primary ?? 'nobody'}, leader is ${leaders[0]?.name ?? 'none'}`);

  if (pooler && !pooler.reachable) problems.push(`the pooler (PgBouncer) does not answer: ${pooler.error ?? ''}`);
  else if (pooler?.paused)
    problems.push('the pooler is paused: clients of the pooled endpoint wait (a switchover in progress; `gardenos local up` resumes one left paused)');
  if (prometheus)
    problems.push(
      `Prometheus (monitoring) is not ready: ${prometheus}; \`gardenos local up\` starts it, \`gardenos local logs prometheus\` says why it stopped`,
    );
  if (backups && !backups.readable) problems.push(`the backup repository cannot be read: ${backups.error ?? ''}`);
  else if (backups && !backups.newest) problems.push('backups are on but the repository holds no backup: `gardenos local up` takes the first');
  if (backups && !backups.scheduler.running)
    problems.push(
      'the backup scheduler is not running: scheduled backups are not taken; `gardenos local up` starts it, `gardenos local logs backup-scheduler` says why it stopped',
    );
  for (const run of Object.values(backups?.scheduler.lastRuns ?? {})) {
    if (!run.ok) problems.push(`the last scheduled ${run.kind === 'verify' ? 'restore test' : `${run.kind} backup`} failed (${run.at}): ${run.error ?? ''}`);
  }
  if (backups?.archiver?.failing) {
    problems.push(archivingProblem(backups.archiver, '', `pgBackRest's log: ${c.layout.backups.logDir}`));
  }
  if (kubernetes) problems.push(...kubernetesProblems(kubernetes));

  const lb = c.topology.loadBalancer;
  const uris = connectionUris(c, undefined);
  return {
    cluster: c.config.cluster.name,
    scope: c.config.postgres.scope,
    stateDir: c.layout.root,
    healthy: problems.length === 0,
    problems,
    endpoints: {
      ...uris,
      stats: `http://${lb}:${c.config.haproxy.ports.stats}/`,
      passwordFile: c.layout.pgpassFile,
      ...(c.config.monitoring.enabled ? { prometheus: `http://${lb}:${c.config.monitoring.port}/` } : {}),
    },
    etcd,
    members,
    haproxy: hap,
    router,
    ...(pooler ? { pooler } : {}),
    ...(kubernetes ? { kubernetes } : {}),
    ...(backups ? { backups } : {}),
  };
}
