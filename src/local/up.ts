// `gardenos local up`: observe what runs, act only on the difference. A healthy
// cluster is left alone; a dead member is restarted; nothing else is touched.
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { EtcdClient } from '../clients/etcd.ts';
import { HaproxyClient } from '../clients/haproxy.ts';
import { PatroniClient } from '../clients/patroni.ts';
import { GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { renderEtcdConfig } from '../render/etcd.ts';
import { renderHaproxyConfig } from '../render/haproxy.ts';
import { renderPatroniConfig } from '../render/patroni.ts';
import { renderRouterSettings } from '../render/router.ts';
import { ensureDir, readJson, writeFileAtomic, type Owner } from '../util/files.ts';
import { waitFor } from '../util/wait.ts';
import { etcdEndpoints, patroniUrl, postmasterPid, routerUrl, type ClusterMeta, type LocalCluster } from './cluster.ts';
import { checkPackages, checkPorts, requirements, type PortNeed } from './preflight.ts';
import { ensurePki, ensureSecrets } from './state.ts';
import { gatherStatus, type LocalStatus } from './status.ts';
import { tail, type ProcessSpec } from './supervisor.ts';

export interface UpOptions {
  /** Deadline for each wait (etcd quorum, a Patroni leader, HAProxy routing). */
  timeoutMs?: number;
}

export interface UpResult {
  /** What this run changed; empty when the cluster was already up and healthy. */
  changes: string[];
  status: LocalStatus;
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

async function ensureAlive(c: LocalCluster, specs: readonly ProcessSpec[], what: string): Promise<void> {
  for (const spec of specs) {
    if ((await c.supervisor.pid(spec)) === undefined) {
      throw new GardenError('MEMBER_FAILED', `${spec.id} exited while waiting for ${what}`, {
        details: [`last lines of ${spec.logFile}:`, ...(await tail(spec.logFile)).map((l) => `  ${l}`)],
        hint: `see the whole log with \`gardenos local logs ${spec.id}\``,
      });
    }
  }
}

export async function localUp(c: LocalCluster, report: Reporter, opts: UpOptions = {}): Promise<UpResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const { config, topology, layout, supervisor, specs } = c;
  const changes: string[] = [];
  const change = (what: string, member?: string) => {
    changes.push(member ? `${member}: ${what}` : what);
    report({ kind: 'change', what, ...(member ? { member } : {}) });
  };

  report({ kind: 'step', step: 'preflight', status: 'start' });
  await checkPackages(requirements(config.postgres.version));
  const running = new Map<string, boolean>();
  for (const s of [...specs.etcd, ...specs.patroni, specs.haproxy, specs.router]) running.set(s.id, (await supervisor.pid(s)) !== undefined);
  const needs: PortNeed[] = [];
  topology.etcd.forEach((m, i) => {
    if (running.get(specs.etcd[i]!.id)) return;
    needs.push({ host: m.address, port: config.etcd.clientPort, owner: `${m.name} etcd client` }, { host: m.address, port: config.etcd.peerPort, owner: `${m.name} etcd peer` });
  });
  for (const [i, m] of topology.postgres.entries()) {
    if (running.get(specs.patroni[i]!.id)) continue;
    needs.push({ host: m.address, port: config.postgres.patroniPort, owner: `${m.name} Patroni API` });
    // A PostgreSQL left running by a stopped Patroni is adopted by Patroni, not a conflict.
    if ((await postmasterPid(c, m.name)) === undefined) needs.push({ host: m.address, port: config.postgres.port, owner: `${m.name} PostgreSQL` });
  }
  if (!running.get(specs.haproxy.id)) {
    const lb = topology.loadBalancer;
    const p = config.haproxy.ports;
    needs.push({ host: lb, port: p.primary, owner: 'HAProxy primary' }, { host: lb, port: p.replicas, owner: 'HAProxy replicas' }, { host: lb, port: p.stats, owner: 'HAProxy stats' });
  }
  if (!running.get(specs.router.id)) needs.push({ host: topology.loadBalancer, port: config.router.port, owner: 'router' });
  await checkPorts(needs);
  report({ kind: 'step', step: 'preflight', status: 'done', detail: 'packages present, ports free' });

  report({ kind: 'step', step: 'state', status: 'start' });
  const fresh = await access(layout.clusterFile).then(() => false, () => true);
  await ensureDir(layout.root, 0o755);
  await ensureDir(layout.logsDir, 0o755);
  await ensureDir(layout.pidsDir, 0o755);
  if (c.pgOwner) await checkReachable(layout.root, c.pgOwner);
  const secrets = await ensureSecrets(layout, config.cluster.name);
  await ensurePki(layout, topology, c.pgOwner);
  report({ kind: 'step', step: 'state', status: 'done', detail: `${layout.root}${fresh ? ' (new)' : ''}` });

  // Render every file; a changed file under a running daemon is reported, not restarted behind the user's back.
  const rendered: { file: string; content: string; mode: number; owner?: Owner; member: string; runningId: string }[] = [];
  for (const [i, m] of topology.etcd.entries()) {
    const f = layout.etcd(m.name);
    await ensureDir(f.dir, 0o700);
    rendered.push({ file: f.configFile, content: renderEtcdConfig({ config, topology, member: m, files: f, secrets }), mode: 0o644, member: m.name, runningId: specs.etcd[i]!.id });
  }
  for (const [i, m] of topology.postgres.entries()) {
    const f = layout.patroni(m.name);
    await ensureDir(f.socketDir, 0o700, c.pgOwner);
    rendered.push({
      file: f.configFile,
      content: renderPatroniConfig({ config, topology, member: m, files: f, secrets }),
      mode: 0o600,
      ...(c.pgOwner ? { owner: c.pgOwner } : {}),
      member: m.name,
      runningId: specs.patroni[i]!.id,
    });
  }
  await ensureDir(layout.haproxy.dir, 0o700);
  rendered.push({ file: layout.haproxy.configFile, content: renderHaproxyConfig({ config, topology, files: layout.haproxy, secrets }), mode: 0o600, member: 'haproxy', runningId: specs.haproxy.id });
  await ensureDir(layout.router.dir, 0o700);
  rendered.push({
    file: layout.router.configFile,
    content: renderRouterSettings({
      config,
      topology,
      etcdTls: layout.client,
      listenHost: topology.loadBalancer,
      sinks: [{ type: 'haproxy', socket: layout.haproxy.adminSocket, primaryBackend: 'postgres-primary', replicasBackend: 'postgres-replicas' }],
    }),
    mode: 0o600,
    member: 'router',
    runningId: specs.router.id,
  });
  for (const r of rendered) {
    if (await writeFileAtomic(r.file, r.content, r.mode, r.owner)) {
      change(`wrote ${r.file}`, r.member);
      if (running.get(r.runningId)) report({ kind: 'warn', message: `${r.runningId} runs with an older ${r.file}; restart it to apply: gardenos local down && gardenos local up` });
    }
  }

  const startAll = async (group: readonly ProcessSpec[], label: string) => {
    const started: ProcessSpec[] = [];
    for (const spec of group) {
      if (running.get(spec.id)) {
        report({ kind: 'step', step: label, member: spec.id, status: 'skip', detail: 'already running' });
        continue;
      }
      const pid = await supervisor.start(spec);
      change(`started ${spec.id} (pid ${pid})`);
      started.push(spec);
    }
    return started;
  };

  // etcd: all members at once (a new cluster needs a quorum to form), then wait for a leader.
  report({ kind: 'step', step: 'etcd', status: 'start' });
  await startAll(specs.etcd, 'etcd');
  const etcd = new EtcdClient(etcdEndpoints(c), layout.client, { timeoutMs: 2000 });
  try {
    await waitFor(
      'etcd quorum',
      async () => {
        await ensureAlive(c, specs.etcd, 'etcd quorum');
        const st = await etcd.statuses();
        return st.every((s) => s.ok) && st.some((s) => s.isLeader);
      },
      { timeoutMs, intervalMs: 200 },
    );
    report({ kind: 'step', step: 'etcd', status: 'done', detail: `${topology.etcd.length} members, mutual TLS` });

    // Stale Patroni state: an initialize key that no data directory here belongs to.
    const prefix = `${config.postgres.namespace}${config.postgres.scope}/`;
    const [initialize, leader] = await Promise.all([etcd.get(`${prefix}initialize`), etcd.get(`${prefix}leader`)]);
    const anyData = (await Promise.all(topology.postgres.map((m) => access(`${layout.patroni(m.name).dataDir}/PG_VERSION`).then(() => true, () => false)))).some(Boolean);
    if (initialize !== null && !anyData) {
      throw new GardenError('STALE_DCS_STATE', `etcd holds Patroni state for scope "${config.postgres.scope}" (initialize=${initialize}${leader ? `, leader=${leader}` : ', no leader'}) from an earlier cluster, but no member has a data directory`, {
        hint: `Patroni would wait forever ("waiting for leader to bootstrap"). Nothing was deleted. If that cluster is gone, remove its keys under ${prefix} (etcdctl del --prefix ${prefix}), or start over with \`gardenos local destroy\``,
      });
    }
  } finally {
    etcd.close();
  }

  // Patroni: all members at once; Patroni's initialize race picks the one that runs initdb.
  report({ kind: 'step', step: 'patroni', status: 'start' });
  await startAll(specs.patroni, 'patroni');
  const clients = topology.postgres.map((m) => new PatroniClient(patroniUrl(c, m.address), { caFile: layout.ca.cert, timeoutMs: 2000 }));
  const leaderName = await waitFor(
    'a PostgreSQL leader with every member running' + (config.postgres.synchronousMode ? ' and a synchronous standby' : ''),
    async () => {
      await ensureAlive(c, specs.patroni, 'PostgreSQL');
      // Every member's own API must answer: a restarted Patroni is not back while only its old PostgreSQL runs.
      const views = await Promise.all(clients.map((cl) => cl.cluster().catch(() => undefined)));
      const view = views[0];
      if (!view || views.some((v) => v === undefined)) return undefined;
      const leaders = view.members.filter((m) => m.role === 'leader' && m.state === 'running');
      if (leaders.length !== 1 || view.members.length !== topology.postgres.length) return undefined;
      if (!view.members.every((m) => m.state === 'running' || m.state === 'streaming')) return undefined;
      if (config.postgres.synchronousMode && !view.members.some((m) => m.role === 'sync_standby')) return undefined;
      const i = topology.postgres.findIndex((m) => m.name === leaders[0]!.name);
      return i >= 0 && (await clients[i]!.check('/primary')) ? leaders[0]!.name : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
  report({ kind: 'step', step: 'patroni', status: 'done', detail: `leader ${leaderName}` });

  report({ kind: 'step', step: 'haproxy', status: 'start' });
  await startAll([specs.haproxy], 'haproxy');
  const haproxy = new HaproxyClient(layout.haproxy.adminSocket);
  await waitFor(
    `HAProxy routing the primary port to ${leaderName}`,
    async () => {
      await ensureAlive(c, [specs.haproxy], 'HAProxy');
      const up = (await haproxy.stats()).filter((s) => s.proxy === 'postgres-primary' && s.status.startsWith('UP'));
      return up.length === 1 && up[0]!.server === leaderName;
    },
    { timeoutMs, intervalMs: 200 },
  );
  report({ kind: 'step', step: 'haproxy', status: 'done', detail: `primary → ${leaderName}` });

  // The router moves the primary port with the leader (watching etcd), faster than HAProxy's own checks.
  report({ kind: 'step', step: 'router', status: 'start' });
  await startAll([specs.router], 'router');
  await waitFor(
    `the router to route to ${leaderName}`,
    async () => {
      await ensureAlive(c, [specs.router], 'the router');
      const res = await fetch(`${routerUrl(c)}/status`, { signal: AbortSignal.timeout(2000) });
      const s = (await res.json()) as { ready: boolean; primary: { name: string } | null };
      return s.ready && s.primary?.name === leaderName;
    },
    { timeoutMs, intervalMs: 200 },
  );
  report({ kind: 'step', step: 'router', status: 'done', detail: `following the leader key of scope ${config.postgres.scope}` });

  const meta = await readJson<ClusterMeta>(layout.clusterFile);
  await writeFileAtomic(layout.clusterFile, `${JSON.stringify({ name: config.cluster.name, createdAt: meta?.createdAt ?? new Date().toISOString(), config } satisfies ClusterMeta, null, 2)}\n`, 0o644);

  return { changes, status: await gatherStatus(c, { withPassword: true }) };
}
