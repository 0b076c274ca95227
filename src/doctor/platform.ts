// `gardenos doctor` for the production platform: the journal's failures as they show on real
// hosts and Kubernetes. Facts: `gardenos status` (etcd, each Patroni member, postgres-primary),
// systemd's view of GardenOS's units on each host and their journal since the last start (SSH),
// pg_hba_file_rules from the leader over TLS, the PostgreSQL pods' permissions step and recent log
// lines, and the Kubernetes facts (nodes, storage classes, workloads). The Kubernetes-only checks
// are the local doctor's own; the rest read these facts instead of a local cluster's.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { PRIMARY_SERVICE } from '../clients/kubernetes.ts';
import type { Config } from '../config/schema.ts';
import { describe } from '../errors.ts';
import { USERS } from '../render/files.ts';
import { postgresPodSelector } from '../render/kube/names.ts';
import { productionTopology } from '../render/topology.ts';
import { bad, CHECKS, hbaAcceptance, ok, replicationState, runChecks, skip, type Check, type Verdict } from './checks.ts';
import { leaderProblems } from '../health/judge.ts';
import { errorLines, findCauses } from './causes.ts';
import { queryHbaRules, type DoctorFacts, type HostUnits, type PlatformFacts, type PoolerPodFacts, type PostgresPodFacts, type UnitState } from './facts.ts';
import type { SshOptions } from '../remote/ssh.ts';
import { report, type DoctorReport } from './run.ts';

const PERMISSION_LOG = /has invalid permissions|could not change permissions|wrong ownership|Permission denied/;

async function postgresPods(kc: KubeConfig, config: Config): Promise<PostgresPodFacts[]> {
  const k8s = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const namespace = config.namespaces.database;
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: postgresPodSelector(config.postgres.scope) })).items;
  return Promise.all(
    pods.map(async (p) => {
      const name = p.metadata!.name!;
      const init = p.status?.initContainerStatuses?.find((s) => s.name === 'volume-permissions');
      const terminated = init?.state?.terminated ?? init?.lastState?.terminated;
      const logOf = (previous: boolean) =>
        core.readNamespacedPodLog({ name, namespace, container: 'postgres', tailLines: 200, previous }).then(
          (l) => l.split('\n'),
          () => [] as string[],
        );
      const [now, before] = await Promise.all([logOf(false), p.status?.containerStatuses?.[0]?.restartCount ? logOf(true) : Promise.resolve([] as string[])]);
      return {
        name,
        node: p.spec?.nodeName,
        permissionsStep: {
          ...(terminated ? { exitCode: terminated.exitCode } : {}),
          ...(init?.state?.waiting?.reason ? { waiting: init.state.waiting.reason } : {}),
        },
        log: [...before, ...now].filter((l) => PERMISSION_LOG.test(l)).slice(-5),
      };
    }),
  );
}

/** The units GardenOS runs on hosts by role, as systemd names them. */
const HOST_UNITS = [
  { role: 'etcd', unit: 'gardenos-etcd' },
  { role: 'haproxy', unit: 'haproxy' },
] as const;

/** systemd's view of each host's GardenOS units and their journal since the last start, one SSH command per host. */
async function hostUnits(config: Config, ssh: SshOptions): Promise<HostUnits[]> {
  const { nodeTarget, SshHost } = await import('../remote/ssh.ts');
  const nodes = config.nodes.filter((n) => HOST_UNITS.some((u) => n.roles.includes(u.role)));
  return Promise.all(
    nodes.map(async (node): Promise<HostUnits> => {
      const units = HOST_UNITS.filter((u) => node.roles.includes(u.role)).map((u) => u.unit);
      const host = new SshHost(nodeTarget(node), { connectTimeoutMs: 5000, retries: 1, ...ssh });
      try {
        await host.connect();
        const script = [
          '[ -d /run/systemd/system ] || { echo systemd=0; exit 0; }',
          'echo systemd=1',
          `for u in ${units.join(' ')}; do`,
          '  echo "unit=$u $(systemctl show -p ActiveState --value $u) $(systemctl show -p SubState --value $u) $(systemctl show -p NRestarts --value $u)"',
          '  since=$(systemctl show -p ExecMainStartTimestamp --value $u)',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, run on the host
          '  journalctl -u $u --no-pager -o cat ${since:+--since "$since"} 2>/dev/null | tail -n 20 | sed "s|^|log=$u |"',
          'done',
        ].join('\n');
        const out = (await host.must('reading systemd', script)).split('\n');
        if (out.includes('systemd=0')) return { node: node.name, systemd: false, units: [] };
        return {
          node: node.name,
          systemd: true,
          units: out
            .filter((l) => l.startsWith('unit='))
            .map((l) => {
              const [unit, active, sub, restarts] = l.slice(5).split(' ');
              return {
                unit: unit!,
                active: active ?? '',
                sub: sub ?? '',
                restarts: Number(restarts ?? 0),
                journal: out.filter((j) => j.startsWith(`log=${unit} `)).map((j) => j.slice(`log=${unit} `.length)),
              };
            }),
        };
      } catch (e) {
        return { node: node.name, error: describe(e), units: [] };
      } finally {
        host.close();
      }
    }),
  );
}

/** The pooler's pods and PgBouncer's SHOW STATE in each ready one (exec through the API server). */
async function poolerPods(kc: KubeConfig, config: Config): Promise<PoolerPodFacts[]> {
  const k8s = await import('@kubernetes/client-node');
  const { execInPod } = await import('../clients/kubernetes.ts');
  const { POOLER_CONTAINER, poolerPodSelector } = await import('../render/kube/pooler.ts');
  const namespace = config.namespaces.database;
  const pods = (await kc.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace, labelSelector: poolerPodSelector() })).items;
  return Promise.all(
    pods.map(async (p): Promise<PoolerPodFacts> => {
      const name = p.metadata!.name!;
      const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      if (!ready) return { name, ready };
      try {
        const { stdout } = await execInPod(
          kc,
          { namespace, pod: name, container: POOLER_CONTAINER },
          ['psql', '-X', '-q', '-t', '-A', '-d', 'pgbouncer', '-c', 'SHOW STATE'],
          10_000,
        );
        const state = Object.fromEntries(
          stdout
            .trim()
            .split('\n')
            .map((l) => l.split('|') as [string, string]),
        );
        return { name, ready, state };
      } catch (e) {
        return { name, ready, error: describe(e) };
      }
    }),
  );
}

/** Whether a unit runs (activating/auto-restart is a unit that keeps dying; restarts alone are a warning). */
const unitHealthy = (u: UnitState) => u.active === 'active' && u.sub === 'running';

export async function gatherPlatformFacts(
  config: Config,
  opts: { secretsDir: string; kubeconfig?: string; timeoutMs?: number; ssh?: SshOptions | false },
): Promise<DoctorFacts> {
  const { platformStatus } = await import('../platform/status.ts');
  const { readPlatformSecrets } = await import('../platform/secrets.ts');
  const kube = await import('../clients/kubernetes.ts');
  const kc = opts.kubeconfig ? await kube.loadKubeConfig(opts.kubeconfig).catch((e: unknown) => e as Error) : undefined;
  // The Kubernetes side is read once, here (status without a kubeconfig reads only etcd, Patroni and HAProxy),
  // alongside the status probes; pg_hba then from the leader they found.
  const [status, pods, kubeFacts, units, pooler] = await Promise.all([
    platformStatus(config, { secretsDir: opts.secretsDir, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) }),
    kc && !(kc instanceof Error)
      ? postgresPods(kc, config).then(
          (p) => ({ p }),
          (e: unknown) => ({ error: describe(e) }),
        )
      : { error: kc ? describe(kc) : 'no kubeconfig given (--kubeconfig)' },
    kc && !(kc instanceof Error)
      ? kube.gatherKubeFacts(kc, config).then(
          (k) => ({ kube: k }),
          (e: unknown) => ({ kubeError: describe(e) }),
        )
      : kc
        ? { kubeError: describe(kc) }
        : {},
    opts.ssh === false ? undefined : hostUnits(config, opts.ssh ?? {}),
    config.pooler.enabled && kc && !(kc instanceof Error)
      ? poolerPods(kc, config).then(
          (pooler) => ({ pooler }),
          (e: unknown) => ({ poolerError: describe(e) }),
        )
      : {},
  ]);
  const leader = status.members.find((m) => m.role === 'leader');
  const hba = leader
    ? await (async () =>
        queryHbaRules({
          host: leader.host,
          port: config.postgres.port,
          user: USERS.superuser,
          password: (await readPlatformSecrets(opts.secretsDir)).superuserPassword,
          // The server certificate names the members' addresses and "localhost".
          ssl: { ca: await readFile(join(opts.secretsDir, 'pki', 'ca.crt'), 'utf8') },
        }))().then(
        (rules) => ({ rules }),
        (e: unknown) => ({ error: describe(e) }),
      )
    : { error: 'no leader to ask' };
  const platform: PlatformFacts = {
    config,
    topology: productionTopology(config),
    status,
    hba: 'rules' in hba ? hba.rules : undefined,
    ...('error' in hba ? { hbaError: hba.error } : {}),
    pods: 'p' in pods ? pods.p : undefined,
    ...('error' in pods ? { podsError: pods.error } : {}),
    ...(units ? { units } : {}),
    ...pooler,
  };
  return { platform, ...kubeFacts };
}

const platform = (fn: (p: PlatformFacts, f: DoctorFacts) => Verdict) => (f: DoctorFacts) => fn(f.platform!, f);
const KUBE_CHECKS = CHECKS.filter((c) => c.source === 'kubernetes');

export const PLATFORM_CHECKS: readonly Check[] = [
  {
    id: 'etcd-health',
    title: 'etcd members healthy, one leader',
    source: 'platform',
    run: platform(({ status }) => {
      const evidence = status.etcd.map((e) => `${e.name} ${e.endpoint}: ${e.healthy ? 'healthy' : (e.error ?? 'unhealthy')}${e.leader ? ', leader' : ''}`);
      const sick = status.etcd.filter((e) => !e.healthy);
      if (sick.length || !status.etcd.some((e) => e.leader)) {
        return bad(
          'fail',
          sick.length
            ? `${sick.map((e) => e.name).join(', ')} not healthy${sick.length * 2 >= status.etcd.length ? ': quorum is lost, Patroni cannot hold its leader lock' : ''}`
            : 'etcd has no leader',
          evidence,
          'on the node: `journalctl -u gardenos-etcd -n 50`; `gardenos up` restarts what is stopped',
        );
      }
      return ok(`${status.etcd.length} healthy`, evidence);
    }),
  },
  {
    id: 'host-units',
    title: "GardenOS's services under systemd on each host (etcd, HAProxy): running, not restarting",
    source: 'platform',
    run: platform(({ units }) => {
      if (!units) return skip('not asked (--no-ssh)');
      const evidence: string[] = [];
      const failing: string[] = [];
      const restarted: string[] = [];
      const causes: string[] = [];
      const unasked: string[] = [];
      for (const h of units) {
        if (h.error) {
          // Whether the host itself is down is etcd-health's and status's to say; here it is a gap in the view.
          evidence.push(`${h.node}: cannot be asked over SSH: ${h.error}`);
          unasked.push(h.node);
          continue;
        }
        if (h.systemd === false) {
          evidence.push(`${h.node}: no systemd (GardenOS's runner starts its services)`);
          continue;
        }
        for (const u of h.units) {
          evidence.push(`${h.node} ${u.unit}: ${u.active}/${u.sub}${u.restarts ? `, restarted ${u.restarts}×` : ''}`);
          if (!unitHealthy(u)) {
            failing.push(`${h.node} ${u.unit} (${u.active}/${u.sub})`);
            const found = findCauses(`${u.unit}@${h.node}`, u.journal);
            if (found.length) causes.push(...found.map((c) => `${h.node} ${u.unit}: ${c.summary}`));
            evidence.push(...(found.length ? found.flatMap((c) => c.evidence) : errorLines(u.journal, 3)).map((l) => `${h.node} ${u.unit} journal: ${l}`));
          } else if (u.restarts) restarted.push(`${h.node} ${u.unit}`);
        }
      }
      if (failing.length)
        return bad(
          'fail',
          `${failing.join(', ')}${causes.length ? `: ${causes.join('; ')}` : ''}`,
          evidence,
          causes.length
            ? "fix what the journal says on that host (the evidence), then `gardenos up`: it also makes GardenOS's directories readable to the services' users"
            : 'on the host: `journalctl -u <unit> -b`; `gardenos up` starts what is stopped',
        );
      if (unasked.length === units.length) return skip(`no host could be asked over SSH (${units.map((h) => `${h.node}: ${h.error}`).join('; ')})`);
      if (unasked.length)
        return bad(
          'warn',
          `${unasked.join(', ')} could not be asked over SSH: systemd's view of ${unasked.length === 1 ? 'it' : 'them'} is missing`,
          evidence,
          '`gardenos status` says whether the host is up; check its SSH server and `--known-hosts`',
        );
      if (restarted.length)
        return bad(
          'warn',
          `${restarted.join(', ')} running, but systemd restarted it (Restart=always): it died at least once`,
          evidence,
          'on the host: `journalctl -u <unit> -b` shows why it stopped',
        );
      return ok(`${units.length} hosts, every unit running`, evidence);
    }),
  },
  {
    id: 'pooler',
    title: "the pooler's pods (pooler.enabled): ready, none left paused",
    source: 'platform',
    run: (f) => {
      const p = f.platform!;
      if (!p.config.pooler.enabled) return ok('pooler.enabled is off');
      if (!p.pooler) return skip(p.poolerError ? `cannot read the pooler's pods: ${p.poolerError}` : 'no kubeconfig given (--kubeconfig)');
      const evidence = p.pooler.map(
        (x) =>
          `${x.name}: ${x.ready ? 'ready' : 'not ready'}${
            x.state
              ? `, ${Object.entries(x.state)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}`
              : ''
          }${x.error ? `, ${x.error}` : ''}`,
      );
      const ns = p.config.namespaces.database;
      const paused = p.pooler.filter((x) => x.state?.paused === 'yes' || x.state?.suspended === 'yes');
      if (paused.length)
        return bad(
          'fail',
          `${paused.map((x) => x.name).join(', ')} paused: its clients wait (a db switchover pauses the pods for seconds, never longer)`,
          evidence,
          `if no \`gardenos db switchover\` is running: kubectl -n ${ns} exec <pod> -c pgbouncer -- psql -d pgbouncer -c RESUME`,
        );
      const ready = p.pooler.filter((x) => x.ready);
      if (ready.length < p.config.pooler.replicas)
        return bad(
          ready.length ? 'warn' : 'fail',
          `${ready.length} of ${p.config.pooler.replicas} pooler pods ready${ready.length ? '' : ': clients of postgres-pooler have nowhere to connect'}`,
          evidence,
          `kubectl -n ${ns} describe deploy/postgres-pooler; kubectl -n ${ns} logs deploy/postgres-pooler`,
        );
      return ok(`${ready.length} pods ready, serving`, evidence);
    },
  },
  {
    id: 'patroni-members',
    title: 'every Patroni member answers, exactly one leader',
    source: 'platform',
    run: platform(({ status, config }) => {
      const evidence = status.members.map((m) => `${m.name} (${m.host}): ${m.role}, ${m.state}${m.apiReachable ? '' : ', REST API does not answer'}`);
      const leaders = status.members.filter((m) => m.role === 'leader');
      const silent = status.members.filter((m) => !m.apiReachable);
      // The judgement `status` makes (health/judge.ts; the synchronous standby is the replication check's).
      const leaderIssues = leaderProblems(status.members, { synchronous: false });
      if (leaderIssues.length || silent.length) {
        return bad(
          'fail',
          [...leaderIssues, silent.length ? `${silent.map((m) => m.host).join(', ')} does not answer` : ''].filter(Boolean).join('; '),
          evidence,
          `kubectl -n ${config.namespaces.database} get pods -o wide; kubectl -n ${config.namespaces.database} logs <pod> -c postgres`,
        );
      }
      return ok(`leader ${leaders[0]!.name}`, evidence);
    }),
  },
  {
    id: 'replication',
    title: 'replicas streaming, a synchronous standby',
    source: 'platform',
    run: platform(({ status, config }) => {
      // Patroni 4 says "streaming" of a replica that replicates.
      const { limit, evidence, notStreaming, lagging, noSync } = replicationState(status.members, config, (m) => m.state === 'streaming');
      if (notStreaming.length || noSync) {
        return bad(
          'fail',
          [notStreaming.map((m) => `${m.name} is ${m.state}`).join(', '), noSync ? 'no synchronous standby: writes wait or run unprotected' : '']
            .filter(Boolean)
            .join('; '),
          evidence,
          'kubectl logs <pod> -c postgres; a replica that cannot catch up: `gardenos db reinit <member>`',
        );
      }
      if (lagging.length)
        return bad(
          'warn',
          `${lagging.map((m) => m.name).join(', ')} more than ${limit} bytes behind`,
          evidence,
          'look for long transactions or I/O on the replica; if it never catches up: `gardenos db reinit <member>`',
        );
      return ok('all streaming within the lag limit', evidence);
    }),
  },
  {
    id: 'pgdata-permissions',
    title: 'the volume-permissions step ran; PostgreSQL accepts its data directory',
    source: 'platform',
    run: platform(({ pods, podsError }) => {
      if (!pods) return skip(`cannot read the PostgreSQL pods: ${podsError}`);
      const evidence = pods.flatMap((p) => [
        `${p.name} on ${p.node ?? '-'}: volume-permissions ${p.permissionsStep.exitCode !== undefined ? `exited ${p.permissionsStep.exitCode}` : (p.permissionsStep.waiting ?? 'has not run')}`,
        ...p.log.map((l) => `${p.name} log: ${l}`),
      ]);
      const wrong = pods.filter((p) => (p.permissionsStep.exitCode ?? 0) !== 0 || p.log.length);
      if (wrong.length) {
        return bad(
          'fail',
          `${wrong.map((p) => p.name).join(', ')}: the data directory has the wrong owner or mode; initdb and PostgreSQL refuse to run there`,
          evidence,
          'on the node: chown -R 999:999 <volume> && chmod 700 <volume> (uid 101 for Spilo); the rendered volume-permissions step does this when it can (`gardenos render`)',
        );
      }
      return ok("every member's permissions step succeeded; no permission errors in the logs", evidence);
    }),
  },
  {
    id: 'pg-hba',
    title: 'pg_hba accepts TLS clients from the members, the nodes and the pod network',
    source: 'platform',
    run: platform(({ hba, hbaError, topology, config }) => {
      if (!hba) return skip(`cannot read pg_hba_file_rules from the leader: ${hbaError}`);
      const { networks, evidence, refused } = hbaAcceptance(hba, topology);
      if (refused.length) {
        return bad(
          'fail',
          `pg_hba refuses TLS clients from ${refused.join(', ')}${refused.includes(config.k3s.clusterCidr) ? ' (the pod network: no pod reaches PostgreSQL)' : ''}`,
          evidence,
          'do not edit pg_hba.conf (Patroni rewrites it): keep `postgresql.pg_hba` of the postgres-patroni Secret as `gardenos render --with-secrets` writes it, then `kubectl -n <database namespace> exec <pod> -- patronictl reload` or restart the pods',
        );
      }
      return ok(`TLS clients accepted from ${networks.join(', ')}`, evidence);
    }),
  },
  {
    id: 'primary-endpoint',
    title: 'postgres-primary points at the current leader only',
    source: 'platform',
    run: (f) => {
      const p = f.platform!;
      if (!f.kube) return skip(f.kubeError ? `Kubernetes API: ${f.kubeError}` : 'no kubeconfig given (--kubeconfig)');
      const leader = p.status.members.find((m) => m.role === 'leader');
      const ep = f.kube.primaryEndpoints;
      const addresses = ep?.subsets?.flatMap((s) => (s.addresses ?? []).map((a) => a.ip)) ?? [];
      const evidence = [
        ep ? `Endpoints ${PRIMARY_SERVICE}: [${addresses.join(', ')}]` : `Endpoints ${PRIMARY_SERVICE}: missing`,
        `leader: ${leader ? `${leader.name} (${leader.host})` : 'none'}`,
      ];
      const router = f.kube.deployments.find((d) => d.metadata?.name === 'gardenos-router');
      if (router) evidence.push(`router: ${router.status?.readyReplicas ?? 0}/${router.spec?.replicas ?? 0} ready`);
      if (!ep || addresses.length !== 1 || (leader && addresses[0] !== leader.host)) {
        return bad(
          'fail',
          !ep
            ? `the ${PRIMARY_SERVICE} Endpoints object is missing: in-cluster clients have nowhere to connect`
            : `${PRIMARY_SERVICE} points at [${addresses.join(', ')}], the leader is ${leader ? `${leader.name} (${leader.host})` : 'unknown'}`,
          evidence,
          (router?.status?.readyReplicas ?? 0) === 0
            ? 'the router is not running: `kubectl -n <database namespace> scale deploy/gardenos-router --replicas=2`, and its log says why it stopped'
            : 'the router runs but does not follow: `kubectl -n <database namespace> logs deploy/gardenos-router`',
        );
      }
      return ok(`routes to the leader ${leader?.name ?? ''}`.trim(), evidence);
    },
  },
  ...KUBE_CHECKS,
];

export async function platformDoctor(
  config: Config,
  opts: { secretsDir: string; kubeconfig?: string; timeoutMs?: number; ssh?: SshOptions | false },
): Promise<DoctorReport> {
  return report(config.cluster.name, runChecks(await gatherPlatformFacts(config, opts), PLATFORM_CHECKS));
}
