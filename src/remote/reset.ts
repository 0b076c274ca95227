// `gardenos reset`: tear hosts down after confirmation, backing up first — an
// etcd snapshot (etcdctl over SSH, copied here) and, where K3s runs the
// database, a pg_dumpall of the leader — then stop the services and remove
// GardenOS's files and the etcd data; a package's file GardenOS replaced
// (HAProxy's configuration) and the distribution's etcd unit go back as they were.
import { writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Config, NodeConfig } from '../config/schema.ts';
import { describe } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { type Phase, runPhases } from '../log/phases.ts';
import { PRIMARY_ROUTE } from '../names.ts';
import { hostFiles, hostPaths } from '../platform/hosts.ts';
import { hostPort } from '../render/topology.ts';
import { ensureDir } from '../util/files.ts';
import { DISTRO_ETCD_MASKED, DISTRO_ETCD_UNIT, RUNNER_PATH, runnerManager, STATE_DIR, systemdManager, UNITS } from './services.ts';
import { nodeTarget, originalOf, SshHost, shellQuote, type SshOptions } from './ssh.ts';

export interface ResetOptions extends SshOptions {
  config: Config;
  /** Only these nodes (default: all). */
  nodes?: string[];
  backupDir: string;
  report: Reporter;
}

export interface ResetResult {
  backups: string[];
  reset: string[];
}

interface ResetContext {
  opts: ResetOptions;
  paths: ReturnType<typeof hostPaths>;
  hosts: { node: NodeConfig; ssh: SshHost }[];
  stamp: string;
  backups: string[];
}

/** Backups first (before anything stops), then each host stopped and cleaned, one at a time. */
const RESET_PHASES: readonly Phase<ResetContext>[] = [
  {
    name: 'connect',
    async run({ hosts }) {
      for (const h of hosts) await h.ssh.connect();
      return `${hosts.length} hosts`;
    },
  },
  {
    name: 'backups',
    async run(ctx) {
      await backupEtcd(ctx);
      await backupPostgres(ctx);
      return ctx.backups.length ? ctx.backups.join(', ') : 'nothing to keep';
    },
  },
  {
    name: 'reset hosts',
    async run(ctx) {
      for (const h of ctx.hosts) await resetHost(ctx, h);
      return ctx.hosts.map((h) => h.node.name).join(', ');
    },
  },
];

export async function reset(opts: ResetOptions): Promise<ResetResult> {
  const nodes = opts.config.nodes.filter((n) => !opts.nodes?.length || opts.nodes.includes(n.name));
  const ctx: ResetContext = {
    opts,
    paths: hostPaths('/'),
    hosts: nodes.map((node) => ({ node, ssh: new SshHost(nodeTarget(node), opts) })),
    stamp: new Date().toISOString().replace(/[:.]/g, '-'),
    backups: [],
  };
  await ensureDir(opts.backupDir, 0o700);
  try {
    await runPhases(RESET_PHASES, ctx, opts.report);
    return { backups: ctx.backups, reset: ctx.hosts.map((h) => h.node.name) };
  } finally {
    for (const h of ctx.hosts) h.ssh.close();
  }
}

/** An etcd snapshot taken on the first etcd host (etcdctl over SSH) and copied here. */
async function backupEtcd({ opts, paths, hosts, stamp, backups }: ResetContext): Promise<void> {
  const { config, report } = opts;
  const etcdHost = hosts.find((h) => h.node.roles.includes('etcd'));
  if (!etcdHost) return;
  report({ kind: 'step', step: 'backup etcd', member: etcdHost.node.name, status: 'start' });
  const c = paths.cert(`etcd-${etcdHost.node.name}`);
  const tmp = `/var/lib/gardenos/etcd-snapshot-${stamp}.db`;
  const snap = await etcdHost.ssh.exec(
    `mkdir -p /var/lib/gardenos && ETCDCTL_API=3 etcdctl --endpoints https://${hostPort(etcdHost.node.address.private, config.etcd.clientPort)} --cacert ${paths.ca} --cert ${c.cert} --key ${c.key} snapshot save ${tmp} >/dev/null && base64 -w0 ${tmp} && rm -f ${tmp}`,
    { timeoutMs: 300_000 },
  );
  if (snap.code === 0 && snap.stdout.length > 0) {
    const file = join(opts.backupDir, `etcd-${stamp}.db`);
    await writeFile(file, Buffer.from(snap.stdout, 'base64'), { mode: 0o600 });
    backups.push(file);
    report({ kind: 'step', step: 'backup etcd', member: etcdHost.node.name, status: 'done', detail: file });
  } else {
    report({
      kind: 'warn',
      message: `${etcdHost.node.name}: no etcd snapshot (${(snap.stderr || 'etcd not running').trim().split('\n').pop()}); nothing to keep from etcd`,
    });
  }
}

/** Where K3s runs the database: a pg_dumpall of the leader (found through postgres-primary's Endpoints), copied here. */
async function backupPostgres({ opts, hosts, stamp, backups }: ResetContext): Promise<void> {
  const { config, report } = opts;
  const k3sHost = hosts.find((h) => h.node.roles.includes('k3s-server'));
  if (!k3sHost || (await k3sHost.ssh.exec('command -v k3s')).code !== 0) return;
  const ns = config.namespaces.database;
  const dump = await k3sHost.ssh.exec(
    `pod=$(k3s kubectl -n ${ns} get endpoints ${PRIMARY_ROUTE} -o jsonpath='{.subsets[0].addresses[0].targetRef.name}') && [ -n "$pod" ] && k3s kubectl -n ${ns} exec "$pod" -- pg_dumpall -U postgres | gzip | base64 -w0`,
    { timeoutMs: 1_800_000 },
  );
  if (dump.code === 0 && dump.stdout.length > 0) {
    const file = join(opts.backupDir, `postgres-${stamp}.sql.gz`);
    await writeFile(file, Buffer.from(dump.stdout, 'base64'), { mode: 0o600 });
    backups.push(file);
    report({ kind: 'step', step: 'backup postgres', member: k3sHost.node.name, status: 'done', detail: file });
  } else {
    report({ kind: 'warn', message: `${k3sHost.node.name}: no PostgreSQL backup (${(dump.stderr || 'no leader').trim().split('\n').pop()})` });
  }
}

/** Stops HAProxy and etcd (systemd or the runner), uninstalls K3s, and removes GardenOS's files and etcd's data. */
async function resetHost({ opts, paths }: ResetContext, h: { node: NodeConfig; ssh: SshHost }): Promise<void> {
  const { config, report } = opts;
  report({ kind: 'step', step: 'reset', member: h.node.name, status: 'start' });
  const systemd = (await h.ssh.exec('[ -d /run/systemd/system ]')).code === 0;
  const services = systemd ? systemdManager : runnerManager;
  const runner = (await h.ssh.exec(`[ -x ${RUNNER_PATH} ]`)).code === 0;
  if (systemd || runner) {
    for (const s of ['haproxy', 'etcd'] as const)
      await h.ssh
        .must(`stopping ${s}`, services.command('stop', s))
        .catch((e) => report({ kind: 'warn', message: `${h.node.name}: stopping ${s}: ${describe(e)}` }));
  }
  await h.ssh.exec('[ -x /usr/local/bin/k3s-uninstall.sh ] && /usr/local/bin/k3s-uninstall.sh; true', { timeoutMs: 300_000 });
  // GardenOS's etcd unit disabled before its file goes (no dangling link in multi-user.target.wants).
  if (systemd) await h.ssh.exec(`systemctl disable ${UNITS.etcd} 2>/dev/null; true`);
  const files = hostFiles(config, h.node, { etcdClusterToken: '' }, paths).map((f) => f.path);
  // A package's own file GardenOS replaced goes back as it was (upload kept it); the rest is GardenOS's and goes.
  const restore = [paths.haproxyConfig];
  // GardenOS's own directories whole (/etc/gardenos: configuration and PKI; /var/lib/gardenos: manifests,
  // pending restarts, the runner), and its files elsewhere.
  const remove = files.filter((f) => !restore.includes(f));
  const dirs = [posix.dirname(paths.pki), STATE_DIR];
  const dropInDir = posix.dirname(paths.haproxyDropIn);
  // The data directory's contents, not the directory: it may be a mount point.
  const data = shellQuote(config.etcd.dataDir);
  await h.ssh.must(
    'removing GardenOS files',
    [
      // The distribution's etcd unit, if up masked it, as it was (its marker is in STATE_DIR, removed below).
      ...(systemd ? [`{ [ ! -e ${DISTRO_ETCD_MASKED} ] || systemctl unmask ${DISTRO_ETCD_UNIT}; }`] : []),
      `rm -rf ${remove.map(shellQuote).join(' ')}`,
      ...restore.map(
        (f) => `if [ -e ${shellQuote(originalOf(f))} ]; then mv -f ${shellQuote(originalOf(f))} ${shellQuote(f)}; else rm -f ${shellQuote(f)}; fi`,
      ),
      `{ [ ! -d ${data} ] || find ${data} -mindepth 1 -delete; }`,
      // Emptied, then removed unless something mounts there.
      ...dirs.map((d) => `{ [ ! -d ${shellQuote(d)} ] || { find ${shellQuote(d)} -mindepth 1 -delete && { rmdir ${shellQuote(d)} 2>/dev/null || true; }; }; }`),
      `{ [ ! -d ${shellQuote(dropInDir)} ] || rmdir --ignore-fail-on-non-empty ${shellQuote(dropInDir)}; }`,
      ...(systemd ? ['systemctl daemon-reload'] : []),
    ].join(' && '),
  );
  report({ kind: 'step', step: 'reset', member: h.node.name, status: 'done', detail: `stopped; removed ${remove.length + dirs.length} paths` });
}
