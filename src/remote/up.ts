// `gardenos up`: provision the hosts over SSH and apply the platform. The work
// is a list of phases (k0sctl's pattern); each observes first and acts only on
// the difference, and every change goes through `Changes.do`, which either
// does it or, with --dry-run, only records it — so the dry-run plan is exactly
// what a real run would do. etcd and K3s restart one host at a time.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Config, NodeConfig } from '../config/schema.ts';
import { etcdServesKubernetes, KUBERNETES_VERSION, MIN_ETCD } from '../config/version.ts';
import { EtcdClient } from '../clients/etcd.ts';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { hostPaths, type HostFile } from '../platform/hosts.ts';
import { kustomizationObjects, renderPlatform } from '../platform/render.ts';
import { readPlatformSecrets } from '../platform/secrets.ts';
import { etcdClientUrls, hostPort, productionTopology } from '../render/topology.ts';
import { statsOverHttp } from '../clients/haproxy.ts';
import { waitFor } from '../util/wait.ts';
import {
  RUNNER_COMMANDS,
  RUNNER_DIR,
  RUNNER_PATH,
  RUNNER_SCRIPT,
  runnerManager,
  systemdManager,
  UNITS,
  type ServiceManager,
  type ServiceName,
} from './services.ts';
import { nodeTarget, SshHost, shellQuote, type SshOptions } from './ssh.ts';

export const PHASES = ['connect', 'facts', 'validate', 'files', 'etcd', 'k3s', 'haproxy', 'kubeconfig', 'manifests', 'database', 'verify'] as const;
export type PhaseName = (typeof PHASES)[number];
/** Phases a run may leave out (the first four are how every other phase knows what to do). */
export const SKIPPABLE: readonly PhaseName[] = ['etcd', 'k3s', 'haproxy', 'kubeconfig', 'manifests', 'database', 'verify'];

export interface UpOptions extends SshOptions {
  config: Config;
  secretsDir: string;
  dryRun?: boolean;
  skip?: PhaseName[];
  /** Hosts worked on at once in the parallel phases. */
  concurrency?: number;
  /** Deadline for each wait (etcd healthy, a node Ready). */
  waitMs?: number;
  /** Wait for every Deployment and StatefulSet to roll out after applying (default true; `--no-wait`). */
  waitForRollouts?: boolean;
  /** Where `kubeconfig` writes (default ./kubeconfig beside gardenos.yaml). */
  kubeconfigFile: string;
  report: Reporter;
}

export interface Change {
  host: string;
  phase: PhaseName;
  action: string;
}

export interface UpResult {
  dryRun: boolean;
  changes: Change[];
  hosts: { name: string; os: string; services: string; etcd: string | null; haproxy: string | null; k3s: string | null }[];
}

interface HostFacts {
  os: string;
  systemd: boolean;
  versions: { etcd: string | null; haproxy: string | null; k3s: string | null };
  clockSkewS: number;
  freeKiB: number;
  listening: string[];
  /** sha256 of each desired file as it is on the host now; absent = missing. */
  hashes: Record<string, string>;
  active: Record<ServiceName, boolean>;
  /** Services an earlier run changed files for but did not get to restart. */
  pending: ServiceName[];
}

interface Host {
  node: NodeConfig;
  ssh: SshHost;
  files: HostFile[];
  facts?: HostFacts;
  services?: ServiceManager;
  /** Paths whose content this run changed (or would change). */
  changed: Set<string>;
}

/** Whether a service must (re)start: it is not running, its files changed now, or an earlier run changed them and stopped before restarting it. */
function owesRestart(h: Host, svc: ServiceName): boolean {
  const f = h.facts!;
  return !f.active[svc] || f.pending.includes(svc) || serviceFiles(svc, h.node.name).some((p) => h.changed.has(p));
}

/** Where a restart still owed is remembered on the host: written with the files, removed after the (re)start. */
const PENDING_DIR = '/var/lib/gardenos/pending';

/** The files each service reads: a change to any of them means that service must restart. */
function serviceFiles(svc: ServiceName, node: string): string[] {
  const p = hostPaths('/');
  switch (svc) {
    case 'etcd':
      return [p.etcdConfig, p.etcdUnit, p.ca, ...Object.values(p.cert(`etcd-${node}`)), `${RUNNER_DIR}/etcd.cmd`];
    case 'haproxy':
      return [p.haproxyConfig, p.haproxyEnv, p.haproxyDropIn, p.ca, `${RUNNER_DIR}/haproxy.cmd`];
    case 'k3s':
      return [p.k3sConfig, p.k3sToken, p.ca, ...Object.values(p.cert('etcd-client-k3s'))];
  }
}

class Changes {
  readonly list: Change[] = [];
  private readonly dryRun: boolean;
  private readonly report: Reporter;
  constructor(dryRun: boolean, report: Reporter) {
    this.dryRun = dryRun;
    this.report = report;
  }
  async do(host: string, phase: PhaseName, action: string, fn: () => Promise<unknown>): Promise<void> {
    return this.doAll(host, phase, [action], fn);
  }

  /** Several changes made by one action (files written in one command). */
  async doAll(host: string, phase: PhaseName, actions: string[], fn: () => Promise<unknown>): Promise<void> {
    if (actions.length === 0) return;
    for (const action of actions) {
      this.list.push({ host, phase, action });
      this.report({ kind: 'change', member: host, what: this.dryRun ? `would ${action}` : action });
    }
    if (!this.dryRun) await fn();
  }
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        await fn(item).catch((e) => errors.push(e));
      }
    }),
  );
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    const hints = [...new Set(errors.map((e) => (e instanceof GardenError ? e.hint : undefined)).filter((h): h is string => Boolean(h)))];
    throw new GardenError('MEMBER_FAILED', `${errors.length} hosts failed`, {
      details: errors.map((e) => describe(e)).sort(),
      ...(hints.length ? { hint: hints.join('; ') } : {}),
    });
  }
}

export async function up(opts: UpOptions): Promise<UpResult> {
  const { config, report } = opts;
  const dryRun = Boolean(opts.dryRun);
  const skip = new Set(opts.skip ?? []);
  const changes = new Changes(dryRun, report);
  const concurrency = opts.concurrency ?? 3;
  const waitMs = opts.waitMs ?? 120_000;
  const topo = productionTopology(config);
  const secrets = await readPlatformSecrets(opts.secretsDir);
  const rendered = await renderPlatform(config, { secretsDir: opts.secretsDir, withSecrets: true });
  const paths = hostPaths('/');

  const hosts: Host[] = config.nodes.map((node) => ({
    node,
    ssh: new SshHost(nodeTarget(node), opts),
    // The host's files from the render: configuration, and its certificates, token and environment file.
    files: rendered
      .filter((f) => f.path.startsWith(`hosts/${node.name}/`))
      .map((f) => ({ path: `/${f.path.slice(`hosts/${node.name}/`.length)}`, content: f.content, mode: f.mode })),
    changed: new Set(),
  }));
  const byRole = (role: NodeConfig['roles'][number]) => hosts.filter((h) => h.node.roles.includes(role));
  /** etcd's health as GardenOS's own client identity sees it, with the certificate from the secrets directory. */
  const etcdHealth = async (): Promise<{ healthy: number; leader: boolean; total: number }> => {
    const pki = join(opts.secretsDir, 'pki');
    const client = new EtcdClient(
      etcdClientUrls(config, topo),
      { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
      { timeoutMs: 3000 },
    );
    try {
      const s = await client.statuses();
      return { healthy: s.filter((x) => x.ok).length, leader: s.some((x) => x.isLeader), total: s.length };
    } finally {
      client.close();
    }
  };
  const waitEtcdHealthy = (why: string) =>
    waitFor(
      `etcd: every member healthy with a leader (${why})`,
      async () => {
        const h = await etcdHealth();
        if (h.healthy !== h.total || !h.leader) throw new Error(`${h.healthy}/${h.total} healthy${h.leader ? '' : ', no leader'}`);
        return true;
      },
      { timeoutMs: waitMs, intervalMs: 500 },
    );

  /** (Re)starts a service and clears the restart it owed, after an optional check: one SSH command. */
  const startService = async (h: Host, svc: ServiceName, running: boolean, check?: string) => {
    const verb = running ? 'restart' : 'start';
    await h.ssh.must(
      `${verb === 'start' ? 'starting' : 'restarting'} ${svc}`,
      [...(check ? [check] : []), h.services!.command(verb, svc), `rm -f ${PENDING_DIR}/${svc}`].join(' && '),
    );
  };

  const phases: Record<PhaseName, () => Promise<string | undefined>> = {
    async connect() {
      await pool(hosts, concurrency, async (h) => {
        report({ kind: 'step', step: 'connect', member: h.node.name, status: 'start' });
        try {
          await h.ssh.connect();
        } catch (e) {
          report({ kind: 'step', step: 'connect', member: h.node.name, status: 'fail', detail: describe(e) });
          throw e;
        }
        report({ kind: 'step', step: 'connect', member: h.node.name, status: 'done', detail: `${h.node.ssh.user}@${h.node.address.private}` });
      });
      return `${hosts.length} hosts`;
    },

    async facts() {
      await pool(hosts, concurrency, async (h) => {
        const managed = [...h.files.map((f) => f.path), RUNNER_PATH, ...Object.keys(RUNNER_COMMANDS).map((n) => `${RUNNER_DIR}/${n}.cmd`)];
        const script = [
          'echo "now=$(date +%s.%N)"',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, run on the host
          '. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"',
          '[ -d /run/systemd/system ] && echo systemd=1 || echo systemd=0',
          'echo "etcd=$(etcd --version 2>/dev/null | head -1 | sed -n "s/^etcd Version: //p")"',
          'echo "haproxy=$(haproxy -v 2>/dev/null | head -1 | sed -n "s/^HAProxy version \\([^ ]*\\).*/\\1/p")"',
          'echo "k3s=$(k3s --version 2>/dev/null | head -1 | sed -n "s/^k3s version \\([^ ]*\\).*/\\1/p")"',
          `echo "free=$(df -Pk ${shellQuote(config.etcd.dataDir.replace(/\/[^/]*$/, '') || '/')} 2>/dev/null | awk 'NR==2 {print $4}')"`,
          'ss -ltnH 2>/dev/null | awk \'{print "listen=" $4}\'',
          `ls ${PENDING_DIR} 2>/dev/null | sed 's/^/pending=/'`,
          `for f in ${managed.map(shellQuote).join(' ')}; do [ -f "$f" ] && echo "hash=$(sha256sum "$f")"; done`,
          // Which of GardenOS's services run, by systemd or by the runner (only ours: a runner we did not install proves nothing).
          `for s in ${Object.entries(UNITS)
            .map(([n, u]) => `${n}:${u}`)
            .join(
              ' ',
            )}; do n=\${s%%:*}; u=\${s#*:}; if [ -d /run/systemd/system ]; then systemctl is-active --quiet "$u" && echo "active=$n"; elif [ -x ${RUNNER_PATH} ]; then ${RUNNER_PATH} is-active "$n" && echo "active=$n"; fi; done; true`,
        ].join('\n');
        const sentAt = Date.now();
        const out = await h.ssh.must('gathering facts', script);
        const answeredAt = Date.now();
        const kv = (k: string) =>
          out
            .split('\n')
            .filter((l) => l.startsWith(`${k}=`))
            .map((l) => l.slice(k.length + 1));
        const systemd = kv('systemd')[0] === '1';
        h.services = systemd ? systemdManager : runnerManager;
        const hashes: Record<string, string> = {};
        for (const line of kv('hash')) {
          const [digest, ...file] = line.split(/\s+/);
          hashes[file.join(' ')] = digest!;
        }
        const running = kv('active');
        const active = { etcd: running.includes('etcd'), haproxy: running.includes('haproxy'), k3s: running.includes('k3s') };
        const v = (x: string | undefined) => (x ? x : null);
        h.facts = {
          os: kv('os')[0] ?? 'unknown',
          systemd,
          versions: { etcd: v(kv('etcd')[0]), haproxy: v(kv('haproxy')[0]), k3s: v(kv('k3s')[0]) },
          // The host's clock was read first thing, somewhere between sending and the answer.
          clockSkewS: Math.max(0, Math.abs(Number(kv('now')[0]) * 1000 - sentAt) - (answeredAt - sentAt)) / 1000,
          freeKiB: Number(kv('free')[0] ?? 0),
          listening: kv('listen'),
          hashes,
          active,
          pending: kv('pending').filter((x): x is ServiceName => x === 'etcd' || x === 'haproxy' || x === 'k3s'),
        };
        report({
          kind: 'step',
          step: 'facts',
          member: h.node.name,
          status: 'done',
          detail: `${h.facts.os}; ${systemd ? 'systemd' : 'no systemd (runner)'}; etcd ${h.facts.versions.etcd ?? 'missing'}, haproxy ${h.facts.versions.haproxy ?? 'missing'}, k3s ${h.facts.versions.k3s ?? 'not installed'}`,
        });
      });
      return undefined;
    },

    async validate() {
      const problems: string[] = [];
      for (const h of hosts) {
        const f = h.facts!;
        const n = h.node.name;
        if (f.clockSkewS > 2)
          problems.push(
            `${n}: clock is ${f.clockSkewS.toFixed(1)}s off this machine's; etcd and TLS need synchronised clocks (install chrony or systemd-timesyncd)`,
          );
        if (h.node.roles.includes('etcd') && !f.versions.etcd) problems.push(`${n}: etcd is not installed (apt-get install -y etcd-server etcd-client)`);
        else if (h.node.roles.includes('etcd') && !etcdServesKubernetes(f.versions.etcd!)) {
          problems.push(
            `${n}: etcd ${f.versions.etcd} cannot hold the state of K3s ${KUBERNETES_VERSION.split('.').slice(0, 2).join('.')}: its API server needs etcd >= ${MIN_ETCD.join('.')} (watch progress requests; without them every watch from "now" fails with 500). Debian 13's etcd-server 3.5 installs on Debian 12: scripts/install-deps.sh does it`,
          );
        }
        if (h.node.roles.includes('haproxy') && !f.versions.haproxy) problems.push(`${n}: haproxy is not installed (apt-get install -y haproxy)`);
        if (f.freeKiB && f.freeKiB < 1024 * 1024)
          problems.push(
            `${n}: only ${Math.round(f.freeKiB / 1024)} MiB free under ${posix.dirname(config.etcd.dataDir)}; etcd and PostgreSQL need at least 1 GiB`,
          );
        // A port GardenOS needs, taken while GardenOS's own service there is not running: something else has it.
        const want: [ServiceName, number][] = [
          ...(h.node.roles.includes('etcd')
            ? ([
                ['etcd', config.etcd.clientPort],
                ['etcd', config.etcd.peerPort],
              ] as [ServiceName, number][])
            : []),
          ...(h.node.roles.includes('haproxy') ? Object.values(config.haproxy.ports).map((p): [ServiceName, number] => ['haproxy', p]) : []),
        ];
        for (const [svc, port] of want) {
          if (f.active[svc]) continue;
          const taken = f.listening.find(
            (l) => l === hostPort(h.node.address.private, port) || l === `0.0.0.0:${port}` || l === `*:${port}` || l === `[::]:${port}`,
          );
          if (taken) problems.push(`${n}: port ${port} (${svc}) is already in use (${taken}); stop what listens there`);
        }
      }
      const etcdVersions = new Set(byRole('etcd').map((h) => h.facts!.versions.etcd?.split('.').slice(0, 2).join('.')));
      if (etcdVersions.size > 1)
        problems.push(`etcd versions differ between hosts (${[...etcdVersions].join(', ')}); install the same minor version everywhere`);
      if (problems.length) throw new GardenError('STATE_CONFLICT', 'the hosts are not ready; nothing was changed', { details: problems });
      return 'clocks, packages, disk and ports';
    },

    async files() {
      await pool(hosts, concurrency, async (h) => {
        const f = h.facts!;
        const desired = [...h.files];
        if (!f.systemd) {
          desired.push({ path: RUNNER_PATH, content: RUNNER_SCRIPT, mode: 0o755 });
          for (const [name, cmd] of Object.entries(RUNNER_COMMANDS)) desired.push({ path: `${RUNNER_DIR}/${name}.cmd`, content: cmd, mode: 0o644 });
        }
        const upload = desired
          .filter((file) => f.hashes[file.path] !== sha(file.content))
          // Under systemd etcd runs as the etcd user, which must read its own key.
          .map((file) => ({ ...file, owner: f.systemd && file.path.startsWith(`${paths.pki}/etcd-${h.node.name}.`) ? 'etcd:etcd' : 'root:root' }));
        for (const file of upload) h.changed.add(file.path);
        // The restart each change owes is written first, so a run that stops halfway leaves it for the next run.
        const owed = (['etcd', 'haproxy', 'k3s'] as const).filter(
          (svc) => h.node.roles.includes(svc === 'k3s' ? 'k3s-server' : svc) && serviceFiles(svc, h.node.name).some((p) => h.changed.has(p)) && f.active[svc],
        );
        upload.unshift(...owed.map((svc) => ({ path: `${PENDING_DIR}/${svc}`, content: 'restart\n', mode: 0o644, owner: 'root:root' })));
        await changes.doAll(
          h.node.name,
          'files',
          upload
            .filter((file) => !file.path.startsWith(PENDING_DIR))
            .map((file) => `${f.hashes[file.path] ? 'update' : 'create'} ${file.path} (${file.mode.toString(8)})`),
          () => h.ssh.upload(upload),
        );
        if (h.node.roles.includes('etcd') && h.changed.size && !f.active.etcd) {
          const owner = f.systemd ? 'chown etcd:etcd' : 'true';
          await changes.do(h.node.name, 'files', `prepare ${config.etcd.dataDir} (0700)`, () =>
            h.ssh.must(
              'preparing the etcd data directory',
              `mkdir -p ${shellQuote(config.etcd.dataDir)} && chmod 700 ${shellQuote(config.etcd.dataDir)} && ${owner} ${shellQuote(config.etcd.dataDir)}`,
            ),
          );
        }
      });
      return `${changes.list.filter((c) => c.phase === 'files').length} file changes`;
    },

    async etcd() {
      const members = byRole('etcd');
      const todo = members.filter((h) => owesRestart(h, 'etcd'));
      if (todo.length === 0) return 'every member running its current configuration';
      const formed = members.some((h) => h.facts!.active.etcd);
      if (!formed) {
        // A new cluster: every member must start before any can have a quorum, so all at once.
        await pool(todo, concurrency, (h) => changes.do(h.node.name, 'etcd', 'start etcd (new cluster)', () => startService(h, 'etcd', false)));
        if (!dryRun) await waitEtcdHealthy('new cluster');
        return `formed a ${members.length}-member cluster`;
      }
      // A running cluster: one member at a time, healthy again before the next, so quorum is never lost.
      for (const h of todo) {
        const running = h.facts!.active.etcd;
        await changes.do(h.node.name, 'etcd', running ? 'restart etcd (configuration changed)' : 'start etcd', () => startService(h, 'etcd', running));
        if (!dryRun) await waitEtcdHealthy(`after ${h.node.name}`);
      }
      return `${todo.length} member${todo.length === 1 ? '' : 's'} (re)started one at a time`;
    },

    async k3s() {
      const servers = byRole('k3s-server');
      const install = () =>
        `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=${shellQuote(config.k3s.version)} INSTALL_K3S_SKIP_START=true sh -s - server --config ${paths.k3sConfig}`;
      // One server at a time, each Ready before the next: the datastore is etcd, so order is about load, not quorum.
      for (const h of servers) {
        const f = h.facts!;
        if (f.versions.k3s !== config.k3s.version) {
          await changes.do(h.node.name, 'k3s', `install K3s ${config.k3s.version}${f.versions.k3s ? ` (has ${f.versions.k3s})` : ''}: ${install()}`, () =>
            h.ssh.must('installing K3s', install(), { timeoutMs: 600_000 }),
          );
        }
        if (owesRestart(h, 'k3s') || f.versions.k3s !== config.k3s.version) {
          await changes.do(h.node.name, 'k3s', `${f.active.k3s ? 'restart' : 'start'} k3s`, () => startService(h, 'k3s', f.active.k3s));
          await changes.do(h.node.name, 'k3s', `wait until node ${h.node.name} is Ready`, () =>
            waitFor(
              `node ${h.node.name} Ready`,
              async () =>
                (
                  await h.ssh.exec(`k3s kubectl get node ${shellQuote(h.node.name)} -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`)
                ).stdout.trim() === 'True',
              { timeoutMs: waitMs, intervalMs: 2000 },
            ),
          );
        }
      }
      return `${servers.length} servers`;
    },

    async haproxy() {
      for (const h of byRole('haproxy')) {
        const f = h.facts!;
        if (!owesRestart(h, 'haproxy')) continue;
        // A configuration HAProxy would reject never replaces a running one.
        const check = `(set -a; . ${paths.haproxyEnv}; set +a; haproxy -c -q -f ${paths.haproxyConfig})`;
        await changes.do(h.node.name, 'haproxy', f.active.haproxy ? 'restart haproxy (configuration changed)' : 'start haproxy', () =>
          startService(h, 'haproxy', f.active.haproxy, check),
        );
      }
      return undefined;
    },

    async kubeconfig() {
      const first = byRole('k3s-server')[0];
      if (!first) return 'no K3s server';
      await changes.do(
        first.node.name,
        'kubeconfig',
        `write ${opts.kubeconfigFile} (server https://${hostPort(topo.loadBalancer, config.haproxy.ports.kubeApi)})`,
        async () => {
          const raw = await first.ssh.must('reading /etc/rancher/k3s/k3s.yaml', 'cat /etc/rancher/k3s/k3s.yaml');
          await writeFile(opts.kubeconfigFile, kubeconfigFor(raw, config), { mode: 0o600 });
        },
      );
      return undefined;
    },

    async manifests() {
      const first = byRole('k3s-server')[0];
      if (!first) return 'no K3s server';
      // In the kustomization's order: namespaces and Secrets first, the workloads after what they need.
      const objects = kustomizationObjects(rendered) as KubernetesObject[];
      await changes.do(
        first.node.name,
        'manifests',
        `apply ${objects.length} objects server-side (field manager gardenos) through ${hostPort(topo.loadBalancer, config.haproxy.ports.kubeApi)}, then wait for every rollout`,
        async () => {
          const { KubeConfig } = await import('@kubernetes/client-node');
          const kc = new KubeConfig();
          try {
            kc.loadFromFile(opts.kubeconfigFile);
          } catch (e) {
            throw new GardenError('CONFIG_NOT_FOUND', `no kubeconfig at ${opts.kubeconfigFile}: ${describe(e)}`, {
              hint: 'the kubeconfig phase writes it; do not --skip kubeconfig, or pass --kubeconfig',
            });
          }
          const { applyObjects, awaitRollouts } = await import('../clients/apply.ts');
          await applyObjects(kc, objects, { report });
          if (opts.waitForRollouts === false) report({ kind: 'info', message: 'not waiting for the rollouts (--no-wait)' });
          else await awaitRollouts(kc, objects, { report, waitMs });
        },
      );
      return undefined;
    },

    async database() {
      const first = byRole('k3s-server')[0];
      if (!first || !config.supabase.enabled) return 'nothing to bootstrap';
      const sql = rendered.find((f) => f.path === 'supabase/bootstrap.sql')!;
      const s = secrets.supabase;
      const vars = `-v authenticator_password=${shellQuote(s.authenticatorPassword)} -v auth_admin_password=${shellQuote(s.authAdminPassword)} -v storage_admin_password=${shellQuote(s.storageAdminPassword)}`;
      await changes.do(first.node.name, 'database', "run Supabase's bootstrap SQL on the leader (idempotent)", async () => {
        const pod = (
          await first.ssh.must(
            'finding the PostgreSQL leader',
            `k3s kubectl -n ${config.namespaces.database} get endpoints postgres-primary -o jsonpath='{.subsets[0].addresses[0].targetRef.name}'`,
          )
        ).trim();
        await first.ssh.must(
          'running the Supabase bootstrap SQL',
          `k3s kubectl -n ${config.namespaces.database} exec -i ${shellQuote(pod)} -- psql -X -q -U postgres ${vars} -f -`,
          { stdin: sql.content },
        );
      });
      return undefined;
    },

    async verify() {
      if (dryRun) return 'skipped in a dry run';
      const problems: string[] = [];
      if (byRole('etcd').length) {
        const h = await etcdHealth().catch((e) => ({ healthy: 0, leader: false, total: byRole('etcd').length, error: describe(e) }));
        if (h.healthy !== h.total || !h.leader) problems.push(`etcd: ${h.healthy}/${h.total} healthy${h.leader ? '' : ', no leader'}`);
      }
      for (const h of byRole('haproxy')) {
        const url = `http://${hostPort(h.node.address.private, config.haproxy.ports.stats)}/`;
        // A HAProxy started a moment ago may not listen yet: wait for it, within a deadline.
        const answered = await waitFor(
          `HAProxy on ${h.node.name}`,
          async () => Boolean(await statsOverHttp(url, { user: config.haproxy.statsUser, password: secrets.statsPassword }, 3000)),
          { timeoutMs: 30_000, intervalMs: 250 },
        ).catch((e) => describe(e));
        if (answered !== true) problems.push(`${h.node.name}: HAProxy stats ${url}: ${answered}`);
      }
      if (problems.length) throw new GardenError('MEMBER_FAILED', 'the platform is not healthy after up', { details: problems });
      return 'etcd healthy; HAProxy answers on every host';
    },
  };

  try {
    for (const name of PHASES) {
      if (skip.has(name)) {
        report({ kind: 'step', step: name, status: 'skip', detail: 'skipped (--skip)' });
        continue;
      }
      report({ kind: 'step', step: name, status: 'start' });
      try {
        const detail = await phases[name]();
        report({ kind: 'step', step: name, status: 'done', ...(detail ? { detail } : {}) });
      } catch (e) {
        report({ kind: 'step', step: name, status: 'fail', detail: describe(e) });
        throw e;
      }
    }
  } finally {
    for (const h of hosts) h.ssh.close();
  }
  return {
    dryRun,
    changes: changes.list,
    hosts: hosts.map((h) => ({
      name: h.node.name,
      os: h.facts?.os ?? 'unknown',
      services: h.services?.kind ?? 'unknown',
      etcd: h.facts?.versions.etcd ?? null,
      haproxy: h.facts?.versions.haproxy ?? null,
      k3s: h.facts?.versions.k3s ?? null,
    })),
  };
}

/**
 * K3s's admin kubeconfig, pointed at the HAProxy address instead of 127.0.0.1, its cluster, user
 * and context named after the cluster. Read as YAML (which JSON is too), not edited as text.
 */
export function kubeconfigFor(raw: string, config: Config): string {
  type Named<K extends string> = { name?: string } & Record<K, Record<string, unknown> | undefined>;
  let kc: { clusters?: Named<'cluster'>[]; users?: Named<'user'>[]; contexts?: Named<'context'>[]; 'current-context'?: string };
  try {
    kc = parseYaml(raw) as typeof kc;
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `K3s's /etc/rancher/k3s/k3s.yaml is not a kubeconfig: ${describe(e)}`);
  }
  if (!kc?.clusters?.length || !kc.users?.length)
    throw new GardenError('BACKEND_UNAVAILABLE', "K3s's /etc/rancher/k3s/k3s.yaml has no cluster or user", {
      hint: 'is K3s running on the first server? `systemctl status k3s`',
    });
  const name = config.cluster.name;
  const server = `https://${hostPort(productionTopology(config).loadBalancer, config.haproxy.ports.kubeApi)}`;
  const cluster = kc.clusters[0]!;
  const user = kc.users[0]!;
  const out = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { ...cluster.cluster, server } }],
    users: [{ name, user: user.user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  };
  return stringifyYaml(out, { lineWidth: 0 });
}
