// `gardenos up`, `kubeconfig` and `reset`: the hosts in gardenos.yaml, over SSH.
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { GardenError } from '../errors.ts';
import { streamReporter } from '../log/events.ts';
import { defaultSecretsDir, ensurePlatformPki, ensurePlatformSecrets } from '../platform/secrets.ts';
import { confirmed } from './confirm.ts';
import { print, table } from './output.ts';

export interface RemoteOptions {
  config: string;
  secretsDir?: string;
  knownHosts?: string;
  trustNewHostKeys?: boolean;
  json?: boolean;
}

const sshOptions = (o: RemoteOptions) => ({ ...(o.knownHosts ? { knownHostsFile: o.knownHosts } : {}), ...(o.trustNewHostKeys ? { trustNew: true } : {}) });

export async function upCommand(
  o: RemoteOptions & { dryRun?: boolean; skip?: string[]; concurrency?: string; timeout?: string; kubeconfig?: string; wait?: boolean },
): Promise<number> {
  const config = await loadConfig(o.config);
  const { up, PHASES, SKIPPABLE } = await import('../remote/up.ts');
  const skip = (o.skip ?? []).flatMap((s) => s.split(',')).filter(Boolean);
  const bad = skip.filter((s) => !SKIPPABLE.includes(s as never));
  if (bad.length)
    throw new GardenError('CONFIG_INVALID', `cannot skip ${bad.join(', ')}`, { hint: `phases: ${PHASES.join(' → ')}; skippable: ${SKIPPABLE.join(', ')}` });
  const secretsDir = resolve(o.secretsDir ?? defaultSecretsDir(o.config));
  await ensurePlatformSecrets(secretsDir, config);
  await ensurePlatformPki(secretsDir, config);
  const result = await up({
    config,
    secretsDir,
    ...sshOptions(o),
    ...(o.dryRun ? { dryRun: true } : {}),
    skip: skip as never[],
    ...(o.concurrency ? { concurrency: Number(o.concurrency) } : {}),
    ...(o.timeout ? { waitMs: Number(o.timeout) * 1000 } : {}),
    ...(o.wait === false ? { waitForRollouts: false } : {}),
    kubeconfigFile: resolve(o.kubeconfig ?? join(dirname(resolve(o.config)), 'kubeconfig')),
    report: streamReporter(process.stderr, Boolean(o.json)),
  });
  print(o.json, result, () => {
    const hosts = table(
      ['HOST', 'OS', 'SERVICES', 'ETCD', 'HAPROXY', 'K3S'],
      result.hosts.map((h) => [h.name, h.os, h.services, h.etcd ?? '-', h.haproxy ?? '-', h.k3s ?? '-']),
    );
    if (result.changes.length === 0) return `${hosts}\n\nno changes: the hosts already run what gardenos.yaml describes`;
    const byHost = [...new Set(result.changes.map((c) => c.host))].map((h) =>
      [`${h}:`, ...result.changes.filter((c) => c.host === h).map((c) => `  [${c.phase}] ${c.action}`)].join('\n'),
    );
    return `${hosts}\n\n${result.dryRun ? 'plan (dry run, nothing was changed):' : 'changed:'}\n${byHost.join('\n')}\n\n${result.changes.length} change${result.changes.length === 1 ? '' : 's'}${result.dryRun ? ' planned' : ''}`;
  });
  return 0;
}

export async function kubeconfigCommand(o: RemoteOptions & { out?: string }): Promise<number> {
  const config = await loadConfig(o.config);
  const server = config.nodes.find((n) => n.roles.includes('k3s-server'));
  if (!server) throw new GardenError('CONFIG_INVALID', 'no node has the k3s-server role');
  const { nodeTarget, SshHost } = await import('../remote/ssh.ts');
  const { kubeconfigFor } = await import('../remote/up.ts');
  const ssh = new SshHost(nodeTarget(server), sshOptions(o));
  await ssh.connect();
  try {
    const raw = await ssh.must('reading /etc/rancher/k3s/k3s.yaml', 'cat /etc/rancher/k3s/k3s.yaml');
    const out = resolve(o.out ?? join(dirname(resolve(o.config)), 'kubeconfig'));
    await writeFile(out, kubeconfigFor(raw, config), { mode: 0o600 });
    print(o.json, { kubeconfig: out }, () => `wrote ${out} (0600); use it with: export KUBECONFIG=${out}`);
  } finally {
    ssh.close();
  }
  return 0;
}

export async function resetCommand(o: RemoteOptions & { host?: string[]; yes?: boolean; backupDir?: string }): Promise<number> {
  const config = await loadConfig(o.config);
  const names = o.host?.length ? o.host : config.nodes.map((n) => n.name);
  const unknown = names.filter((n) => !config.nodes.some((x) => x.name === n));
  if (unknown.length)
    throw new GardenError('CONFIG_INVALID', `no node called ${unknown.join(', ')}`, { hint: `nodes: ${config.nodes.map((n) => n.name).join(', ')}` });
  const backupDir = resolve(o.backupDir ?? join(dirname(resolve(o.config)), '.gardenos', 'backups'));
  const loss = `This stops etcd, K3s and HAProxy on ${names.join(', ')} and deletes GardenOS's files and the etcd data there (an etcd snapshot and a PostgreSQL dump are copied to ${backupDir} first).`;
  if (!(await confirmed({ yes: o.yes, action: `reset ${names.join(', ')}`, loss, expect: config.cluster.name, what: 'the cluster name' }))) return 1;
  const { reset } = await import('../remote/reset.ts');
  const r = await reset({ config, nodes: names, backupDir, ...sshOptions(o), report: streamReporter(process.stderr, Boolean(o.json)) });
  print(o.json, r, () =>
    [`reset ${r.reset.join(', ')}`, ...(r.backups.length ? [`backups: ${r.backups.join(', ')}`] : ['no backups were possible (nothing was running)'])].join(
      '\n',
    ),
  );
  return 0;
}
