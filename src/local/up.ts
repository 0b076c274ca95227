// `gardenos local up`: observe what runs, act only on the difference. A healthy
// cluster is left alone; a dead member is restarted; nothing else is touched.
// The work is a list of phases (k0sctl's pattern), each reported as it runs.
import { access, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { EtcdClient } from '../clients/etcd.ts';
import { HaproxyClient } from '../clients/haproxy.ts';
import { PatroniClient, readyLeader } from '../clients/patroni.ts';
import pg from 'pg';
import { describe, GardenError } from '../errors.ts';
import { patroniKeys } from '../router/dcs.ts';
import { ensureLoginRole } from '../ops/roles.ts';
import { runPhases, type Phase as SharedPhase } from '../log/phases.ts';
import type { Reporter } from '../log/events.ts';
import { USERS, type ClusterSecrets } from '../render/files.ts';
import { alertRules } from '../render/prometheus.ts';
import { hostPort } from '../render/topology.ts';
import { request } from '../util/http.ts';
import { ensureDir, readJson, writeFileAtomic, type Owner } from '../util/files.ts';
import { connectionUris, etcdEndpoints, patroniUrl, postmasterPid, type ClusterMeta, type LocalCluster } from './cluster.ts';
import { backupDirs, ensureBackups } from './backups.ts';
import { localFiles } from './files.ts';
import { ensureNetwork } from './netns.ts';
import { checkPackages, checkPatroniVersion, checkPorts, requirements, type PortNeed } from './preflight.ts';
import { poolerAdmin, reachesPrimary } from './pooler.ts';
import { ensurePki, ensureSecrets, writePgpass } from './state.ts';
import { readS3Credentials, type S3Credentials } from '../config/credentials.ts';
import { fetchRouterStatus, gatherStatus, type LocalStatus } from './status.ts';
import { awaitMembers } from './startup.ts';
import type { ProcessSpec } from './supervisor.ts';
import { PRIMARY_ROUTE } from '../names.ts';

export interface UpOptions {
  /** Deadline for each wait (etcd quorum, a Patroni leader, HAProxy routing). */
  timeoutMs?: number;
}

export interface UpResult {
  /** What this run changed; empty when the cluster was already up and healthy. */
  changes: string[];
  status: LocalStatus;
}

/** What the phases share: the cluster, what was running when `up` began, and what they learn. */
interface UpContext {
  c: LocalCluster;
  report: Reporter;
  timeoutMs: number;
  running: ReadonlyMap<string, boolean>;
  /** When this run began: what the logs said before it is history. */
  startedAt: number;
  changes: string[];
  secrets?: ClusterSecrets;
  /** backups.repository.s3: the access key, read from its credentials file (never stored by GardenOS). */
  s3?: S3Credentials;
  leader?: string;
}

/** One phase of `local up`, run by the shared runner (log/phases.ts). */
type Phase = SharedPhase<UpContext>;

function change(ctx: UpContext, what: string, member?: string): void {
  ctx.changes.push(member ? `${member}: ${what}` : what);
  ctx.report({ kind: 'change', what, ...(member ? { member } : {}) });
}

/** Starts the processes of `group` that are not running. */
async function startMissing(ctx: UpContext, group: readonly ProcessSpec[], step: string): Promise<void> {
  for (const spec of group) {
    if (ctx.running.get(spec.id)) {
      ctx.report({ kind: 'step', step, member: spec.id, status: 'skip', detail: 'already running' });
      continue;
    }
    change(ctx, `started ${spec.id} (pid ${await ctx.c.supervisor.start(spec)})`);
  }
}

/** PostgreSQL runs as another user: every directory above its data must let that user through. */
async function checkReachable(path: string, owner: Owner): Promise<void> {
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    const s = await stat(dir).catch(() => undefined);
    if (s) {
      const ok = s.uid === owner.uid ? s.mode & 0o100 : s.gid === owner.gid ? s.mode & 0o010 : s.mode & 0o001;
      if (!ok) {
        throw new GardenError('STATE_CONFLICT', `the postgres user cannot enter ${dir}, which holds the cluster's state directory ${path}`, {
          hint: `run \`chmod o+x ${dir}\`, or choose another place with --state-dir (or GARDENOS_STATE_DIR)`,
        });
      }
    }
    if (dir === '/') return;
  }
}

/** Every address:port that a process about to be started will bind. */
async function portNeeds({ c, running }: UpContext): Promise<PortNeed[]> {
  const { config, topology, specs } = c;
  const needs: PortNeed[] = [];
  // In isolated mode the members' addresses live in their own, fresh namespaces: only the bridge side can clash.
  if (!c.network)
    topology.etcd.forEach((m, i) => {
      if (running.get(specs.etcd[i]!.id)) return;
      needs.push(
        { host: m.address, port: config.etcd.clientPort, owner: `${m.name} etcd client` },
        { host: m.address, port: config.etcd.peerPort, owner: `${m.name} etcd peer` },
      );
    });
  for (const [i, m] of topology.postgres.entries()) {
    if (c.network || running.get(specs.patroni[i]!.id)) continue;
    needs.push({ host: m.address, port: config.postgres.patroniPort, owner: `${m.name} Patroni API` });
    // A PostgreSQL left running by a stopped Patroni is adopted by Patroni, not a conflict.
    if ((await postmasterPid(c, m.name)) === undefined) needs.push({ host: m.address, port: config.postgres.port, owner: `${m.name} PostgreSQL` });
  }
  const lb = topology.loadBalancer;
  if (!running.get(specs.haproxy.id)) {
    const p = config.haproxy.ports;
    needs.push(
      { host: lb, port: p.primary, owner: 'HAProxy primary' },
      { host: lb, port: p.replicas, owner: 'HAProxy replicas' },
      { host: lb, port: p.stats, owner: 'HAProxy stats' },
    );
  }
  if (!running.get(specs.router.id)) needs.push({ host: lb, port: config.router.port, owner: 'router' });
  if (config.pooler.enabled && !running.get(specs.pooler.id)) needs.push({ host: lb, port: config.pooler.port, owner: 'pooler (PgBouncer)' });
  if (config.monitoring.enabled && !running.get(specs.monitoring.id)) needs.push({ host: lb, port: config.monitoring.port, owner: 'Prometheus' });
  if (config.monitoring.enabled) {
    for (const s of specs.exporters) if (s.listen && !running.get(s.id)) needs.push({ host: s.listen.host, port: s.listen.port, owner: s.id });
  }
  return needs;
}

const preflight: Phase = {
  name: 'preflight',
  async run(ctx) {
    const { config } = ctx.c;
    await checkPackages(
      requirements(config.postgres.version, { pooler: config.pooler.enabled, monitoring: config.monitoring.enabled, backups: config.backups.enabled }),
    );
    // Patroni answers --version in ~0.4 s (Python's start-up): asked while the rest runs.
    const [patroniVersion, network] = await Promise.all([
      checkPatroniVersion(),
      (async () => {
        let network = '';
        if (ctx.c.network) {
          const made = await ensureNetwork(ctx.c.network);
          for (const m of made) change(ctx, `created ${m}`);
          network = `, ${ctx.c.network.members.length} network namespaces on bridge ${ctx.c.network.bridge}`;
        }
        await checkPorts(await portNeeds(ctx));
        return network;
      })(),
    ]);
    return `packages present (Patroni ${patroniVersion}), ports free${network}`;
  },
};

const state: Phase = {
  name: 'state',
  async run(ctx) {
    const { layout, config, topology, pgOwner } = ctx.c;
    const fresh = await access(layout.clusterFile).then(
      () => false,
      () => true,
    );
    for (const dir of [layout.root, layout.logsDir, layout.pidsDir]) await ensureDir(dir, 0o755);
    if (pgOwner) await checkReachable(layout.root, pgOwner);
    ctx.secrets = await ensureSecrets(layout, config.cluster.name);
    const s3 = config.backups.enabled ? config.backups.repository.s3 : undefined;
    if (s3) ctx.s3 = await readS3Credentials(s3.credentialsFile);
    await writePgpass(ctx.c, ctx.secrets);
    await ensurePki(layout, topology, pgOwner, config.pooler.enabled);
    // The archive_command runs as PostgreSQL's user from the members' first start: its directories first.
    if (config.backups.enabled) for (const dir of backupDirs(ctx.c)) await ensureDir(dir, 0o750, pgOwner);
    return `${layout.root}${fresh ? ' (new)' : ''}`;
  },
};

const files: Phase = {
  name: 'files',
  async run(ctx) {
    let written = 0;
    for (const f of localFiles(ctx.c, ctx.secrets!, ctx.s3)) {
      await ensureDir(f.dir, f.dirMode, f.owner);
      if (!(await writeFileAtomic(f.file, f.content, f.mode, f.owner))) continue;
      written++;
      change(ctx, `wrote ${f.file}`, f.member);
      // A changed file under a running daemon is reported, not restarted behind the user's back.
      if (ctx.running.get(f.processId))
        ctx.report({ kind: 'warn', message: `${f.processId} runs with an older ${f.file}; restart it to apply: gardenos local down && gardenos local up` });
    }
    return written ? `${written} written` : 'unchanged';
  },
};

const etcd: Phase = {
  name: 'etcd',
  async run(ctx) {
    const { c, timeoutMs } = ctx;
    const { config, topology, layout, specs } = c;
    // All members at once: a new cluster needs a quorum to form.
    await startMissing(ctx, specs.etcd, 'etcd');
    const client = new EtcdClient(etcdEndpoints(c), layout.client, { timeoutMs: 2000 });
    try {
      await awaitMembers(
        c,
        specs.etcd,
        'etcd quorum',
        async () => {
          const st = await client.statuses();
          return st.every((s) => s.ok) && st.some((s) => s.isLeader);
        },
        { timeoutMs, intervalMs: 200, since: ctx.startedAt },
      );
      // Stale Patroni state: an initialize key that no data directory here belongs to.
      const keys = patroniKeys(config.postgres.namespace, config.postgres.scope);
      const [initialize, leader] = await Promise.all([client.get(keys.initialize), client.get(keys.leader)]);
      const hasData = await Promise.all(
        topology.postgres.map((m) =>
          access(`${layout.patroni(m.name).dataDir}/PG_VERSION`).then(
            () => true,
            () => false,
          ),
        ),
      );
      if (initialize !== null && !hasData.some(Boolean)) {
        throw new GardenError(
          'STALE_DCS_STATE',
          `etcd holds Patroni state for scope "${config.postgres.scope}" (initialize=${initialize}${leader ? `, leader=${leader}` : ', no leader'}) from an earlier cluster, but no member has a data directory`,
          {
            hint: `Patroni would wait forever ("waiting for leader to bootstrap"). Nothing was deleted. If that cluster is gone: \`gardenos local dcs clean\` (it backs the keys up first), then \`gardenos local up\` again; or start over with \`gardenos local destroy\``,
          },
        );
      }
    } finally {
      client.close();
    }
    return `${topology.etcd.length} members, mutual TLS`;
  },
};

const patroni: Phase = {
  name: 'patroni',
  async run(ctx) {
    const { c, timeoutMs } = ctx;
    const { config, topology, layout, specs } = c;
    // All members at once; Patroni's initialize race picks the one that runs initdb.
    await startMissing(ctx, specs.patroni, 'patroni');
    const clients = topology.postgres.map((m) => new PatroniClient(patroniUrl(c, m.address), { caFile: layout.ca.cert, timeoutMs: 2000 }));
    ctx.leader = await awaitMembers(
      c,
      specs.patroni,
      `a PostgreSQL leader with every member running${config.postgres.synchronousMode ? ' and a synchronous standby' : ''}`,
      async () => {
        // Every member's own API must answer: a restarted Patroni is not back while only its old PostgreSQL runs.
        const views = await Promise.all(clients.map((cl) => cl.cluster().catch(() => undefined)));
        const view = views[0];
        if (!view || views.some((v) => v === undefined)) return undefined;
        const leader = readyLeader(view, { members: topology.postgres.length, synchronous: config.postgres.synchronousMode });
        const i = topology.postgres.findIndex((m) => m.name === leader);
        return i >= 0 && (await clients[i]!.check('/primary')) ? leader : undefined;
      },
      { timeoutMs, intervalMs: 250, since: ctx.startedAt },
    );
    return `leader ${ctx.leader}`;
  },
};

const haproxy: Phase = {
  name: 'haproxy',
  async run(ctx) {
    const { c, timeoutMs, leader } = ctx;
    await startMissing(ctx, [c.specs.haproxy], 'haproxy');
    const client = new HaproxyClient(c.layout.haproxy.adminSocket);
    await awaitMembers(
      c,
      [c.specs.haproxy],
      `HAProxy routing the primary port to ${leader}`,
      async () => {
        const up = (await client.stats()).filter((s) => s.proxy === PRIMARY_ROUTE && s.status.startsWith('UP'));
        return up.length === 1 && up[0]!.server === leader;
      },
      { timeoutMs, intervalMs: 200, since: ctx.startedAt },
    );
    return `primary → ${leader}`;
  },
};

const router: Phase = {
  name: 'router',
  async run(ctx) {
    const { c, timeoutMs, leader } = ctx;
    // The router moves the primary port with the leader (watching etcd), faster than HAProxy's own checks.
    await startMissing(ctx, [c.specs.router], 'router');
    await awaitMembers(
      c,
      [c.specs.router],
      `the router to route to ${leader}`,
      async () => {
        const s = await fetchRouterStatus(c, 2000);
        return s.ready && s.primary?.name === leader;
      },
      { timeoutMs, intervalMs: 200, since: ctx.startedAt },
    );
    return `following the leader key of scope ${c.config.postgres.scope}`;
  },
};

const pooler: Phase = {
  name: 'pooler',
  async run(ctx) {
    const { c, timeoutMs, leader } = ctx;
    const { config, topology, specs } = c;
    if (!config.pooler.enabled) return 'off (pooler.enabled in gardenos.yaml puts PgBouncer in front of the primary)';
    await startMissing(ctx, [specs.pooler], 'pooler');
    if (ctx.running.get(specs.pooler.id)) {
      // A switchover interrupted between PAUSE and RESUME leaves clients waiting: resume it. PgBouncer 1.18
      // does not show a global PAUSE in its SHOW lists, so RESUME is simply sent: "not paused" means fine.
      const admin = await poolerAdmin(c, ctx.secrets!);
      try {
        const resumed = await admin.command('RESUME').then(
          () => true,
          (e: unknown) => {
            if (/not paused/i.test(describe(e))) return false;
            throw e;
          },
        );
        if (resumed) change(ctx, 'resumed the pooler, which was left paused', 'pooler');
      } finally {
        await admin.close();
      }
    }
    // Resumed above, or just started (a new PgBouncer is never paused): a pause marker left behind is stale.
    await rm(c.layout.pooler.pauseMarker, { force: true });
    // A real query through it: TLS to it, SCRAM, and its own TLS to the primary through HAProxy.
    const uri = connectionUris(c, ctx.secrets!.superuserPassword).pooled!;
    const address = topology.postgres.find((m) => m.name === leader)?.address;
    await awaitMembers(c, [specs.pooler], `PgBouncer to reach the primary (${leader})`, () => reachesPrimary(uri, address), {
      timeoutMs,
      intervalMs: 250,
      since: ctx.startedAt,
    });
    return `${topology.loadBalancer}:${config.pooler.port} → primary (${config.pooler.poolMode} pooling)`;
  },
};

const monitoring: Phase = {
  name: 'monitoring',
  async run(ctx) {
    const { c, timeoutMs } = ctx;
    const { config, topology, specs, layout } = c;
    if (!config.monitoring.enabled) return 'off (monitoring.enabled in gardenos.yaml, or `local up --with-monitoring`, runs Prometheus with the alert rules)';
    // postgres-exporter's role, on the primary (replicated from there); its password is in the secrets.
    if (await ensureMonitorRole(c, ctx.secrets!)) change(ctx, `created role ${USERS.monitor} (pg_monitor) for postgres-exporter`, 'monitoring');
    await ensureDir(layout.monitoring.textfileDir, 0o755);
    await startMissing(ctx, specs.exporters, 'monitoring');
    await startMissing(ctx, [specs.monitoring], 'monitoring');
    const url = `http://${hostPort(topology.loadBalancer, config.monitoring.port)}`;
    const answers = async (u: string) => (await request(u, { timeoutMs: 2000 }).catch(() => undefined))?.status === 200 || undefined;
    await awaitMembers(
      c,
      [specs.monitoring, ...specs.exporters],
      'Prometheus, the exporters and Alertmanager to be ready',
      async () => {
        const exporterUrls = specs.exporters.flatMap((s) => (s.listen ? [`http://${hostPort(s.listen.host, s.listen.port)}${s.listen.readyPath}`] : []));
        return (await Promise.all([answers(`${url}/-/ready`), ...exporterUrls.map(answers)])).every(Boolean) || undefined;
      },
      { timeoutMs, intervalMs: 250, since: ctx.startedAt },
    );
    return `Prometheus on ${url} (every ${config.monitoring.scrapeIntervalSeconds}s, ${alertRules(config).length} alert rules), Alertmanager on :${config.monitoring.alertmanager.port}, ${specs.exporters
      .filter((s) => s.id !== 'alertmanager')
      .map((s) => s.id)
      .join(', ')}`;
  },
};

/** postgres-exporter's login role on the primary; true when it was created. */
async function ensureMonitorRole(c: LocalCluster, secrets: ClusterSecrets): Promise<boolean> {
  const client = new pg.Client({ connectionString: connectionUris(c, secrets.superuserPassword).primary, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return await ensureLoginRole(client, USERS.monitor, secrets.monitorPassword!, ['pg_monitor']);
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `could not create postgres-exporter's role ${USERS.monitor} on the primary: ${describe(e)}`, {
      hint: 'the primary must accept connections: `gardenos local status`',
      cause: e,
    });
  } finally {
    await client.end().catch(() => {});
  }
}

const backups: Phase = {
  name: 'backups',
  async run(ctx) {
    const { c, report } = ctx;
    if (!c.config.backups.enabled)
      return 'off (backups.enabled in gardenos.yaml, or `local up --with-backups`, archives WAL and takes base backups with pgBackRest)';
    const { created, info } = await ensureBackups(c, report);
    if (created) change(ctx, `took the first full backup ${created.label}`, 'backups');
    await startMissing(ctx, [c.specs.scheduler], 'backups');
    const last = info.backups.at(-1);
    const s = c.config.backups.schedule;
    return `stanza ${info.stanza}, WAL archived${last ? `; newest backup ${last.label} (${last.type})` : ''}; scheduled: full "${s.full}", diff "${s.diff}"${s.incr ? `, incr "${s.incr}"` : ''}`;
  },
};

export const UP_PHASES: readonly Phase[] = [preflight, state, files, etcd, patroni, haproxy, router, pooler, backups, monitoring];

export async function localUp(c: LocalCluster, report: Reporter, opts: UpOptions = {}): Promise<UpResult> {
  const running = new Map<string, boolean>();
  for (const s of [
    ...c.specs.etcd,
    ...c.specs.patroni,
    c.specs.haproxy,
    c.specs.router,
    c.specs.pooler,
    c.specs.monitoring,
    ...c.specs.exporters,
    c.specs.scheduler,
  ])
    running.set(s.id, (await c.supervisor.pid(s)) !== undefined);
  const ctx: UpContext = { c, report, timeoutMs: opts.timeoutMs ?? 120_000, running, changes: [], startedAt: Date.now() };
  // A failure is thrown with its whole message (the CLI prints it once); the fail event only marks the step.
  await runPhases(UP_PHASES, ctx, report, { failDetail: false });
  const { layout, config } = c;
  const meta = await readJson<ClusterMeta>(layout.clusterFile);
  await writeFileAtomic(
    layout.clusterFile,
    `${JSON.stringify({ name: config.cluster.name, createdAt: meta?.createdAt ?? new Date().toISOString(), config } satisfies ClusterMeta, null, 2)}\n`,
    0o644,
  );
  return { changes: ctx.changes, status: await gatherStatus(c) };
}
