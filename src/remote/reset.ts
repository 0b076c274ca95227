// `gardenos reset`: tear hosts down after confirmation, backing up first — an
// etcd snapshot (etcdctl over SSH, copied here) and, where K3s runs the
// database, a pg_dumpall of the leader — then stop the services and remove
// GardenOS's files and the etcd data.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, NodeConfig } from '../config/schema.ts';
import { describe } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { hostFiles, hostPaths } from '../platform/hosts.ts';
import { hostPort } from '../render/topology.ts';
import { ensureDir } from '../util/files.ts';
import { RUNNER_DIR, RUNNER_PATH, runnerManager, systemdManager } from './services.ts';
import { nodeTarget, SshHost, shellQuote, type SshOptions } from './ssh.ts';

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

export async function reset(opts: ResetOptions): Promise<ResetResult> {
  const { config, report } = opts;
  const paths = hostPaths('/');
  const nodes = config.nodes.filter((n) => !opts.nodes?.length || opts.nodes.includes(n.name));
  const hosts = nodes.map((node) => ({ node, ssh: new SshHost(nodeTarget(node), opts) }));
  const backups: string[] = [];
  await ensureDir(opts.backupDir, 0o700);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  try {
    for (const h of hosts) await h.ssh.connect();
    // 1. Backups, before anything stops.
    const etcdHost = hosts.find((h) => h.node.roles.includes('etcd'));
    if (etcdHost) {
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
    const k3sHost = hosts.find((h) => h.node.roles.includes('k3s-server'));
    if (k3sHost && (await k3sHost.ssh.exec('command -v k3s')).code === 0) {
      const ns = config.namespaces.database;
      const dump = await k3sHost.ssh.exec(
        `pod=$(k3s kubectl -n ${ns} get endpoints postgres-primary -o jsonpath='{.subsets[0].addresses[0].targetRef.name}') && [ -n "$pod" ] && k3s kubectl -n ${ns} exec "$pod" -- pg_dumpall -U postgres | gzip | base64 -w0`,
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
    // 2. Stop and remove, host by host.
    for (const h of hosts) {
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
      const files = hostFiles(config, h.node as NodeConfig, { etcdClusterToken: '' }, paths).map((f) => f.path);
      const remove = [
        ...files,
        paths.pki,
        paths.k3sToken,
        paths.haproxyEnv,
        RUNNER_DIR,
        RUNNER_PATH,
        '/var/lib/gardenos/manifests',
        '/var/lib/gardenos/pending',
      ];
      // The data directory's contents, not the directory: it may be a mount point.
      const data = shellQuote(config.etcd.dataDir);
      await h.ssh.must(
        'removing GardenOS files',
        `rm -rf ${remove.map(shellQuote).join(' ')} && { [ ! -d ${data} ] || find ${data} -mindepth 1 -delete; }${systemd ? ' && systemctl daemon-reload' : ''}`,
      );
      report({ kind: 'step', step: 'reset', member: h.node.name, status: 'done', detail: `stopped; removed ${remove.length} paths` });
    }
    return { backups, reset: hosts.map((h) => h.node.name) };
  } finally {
    for (const h of hosts) h.ssh.close();
  }
}
