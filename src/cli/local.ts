// `gardenos local …`: the database tier on one machine.
import { setTimeout as sleep } from 'node:timers/promises';
import { GardenError } from '../errors.ts';
import { streamReporter } from '../log/events.ts';
import { openLocalCluster, type OpenOptions } from '../local/cluster.ts';
import { gatherStatus } from '../local/status.ts';
import { tail } from '../local/supervisor.ts';
import { confirmed } from './confirm.ts';
import { formatDoctor, formatStatus, print } from './output.ts';

export interface GlobalOptions extends OpenOptions {
  json?: boolean;
}

export async function upCommand(
  g: GlobalOptions,
  opts: { timeout?: string; isolated?: boolean; withMonitoring?: boolean; withBackups?: boolean },
): Promise<number> {
  const c = await openLocalCluster({
    ...g,
    ...(opts.isolated ? { isolated: true } : {}),
    ...(opts.withMonitoring ? { monitoring: true } : {}),
    ...(opts.withBackups ? { backups: true } : {}),
  });
  const report = streamReporter(process.stderr, Boolean(g.json));
  const { localUp } = await import('../local/up.ts');
  const result = await localUp(c, report, opts.timeout ? { timeoutMs: Number(opts.timeout) * 1000 } : {});
  print(g.json, result, () =>
    [
      result.changes.length ? `\n${result.changes.length} change${result.changes.length === 1 ? '' : 's'}.` : '\nno changes: the cluster was already up.',
      '',
      `primary (read-write):  ${result.status.endpoints.primary}`,
      `replicas (read-only):  ${result.status.endpoints.replicas}`,
      ...(result.status.endpoints.pooled ? [`pooled (read-write, kept through a planned switchover):  ${result.status.endpoints.pooled}`] : []),
      `password:              PGPASSFILE=${result.status.endpoints.passwordFile} (libpq and psql read it; never printed)`,
      `HAProxy stats:         ${result.status.endpoints.stats} (user ${c.config.haproxy.statsUser}, password in ${c.layout.secretsFile})`,
      ...(result.status.endpoints.prometheus ? [`Prometheus (alerts):   ${result.status.endpoints.prometheus}alerts`] : []),
      '',
      formatStatus(result.status),
    ].join('\n'),
  );
  return result.status.healthy ? 0 : 2;
}

export async function statusCommand(g: GlobalOptions, opts: { timeout?: string; kubeconfig?: string; watch?: boolean; interval?: string }): Promise<number> {
  const c = await openLocalCluster(g);
  const gather = () =>
    gatherStatus(c, { ...(opts.timeout ? { timeoutMs: Number(opts.timeout) } : {}), ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}) });
  if (!opts.watch) {
    const status = await gather();
    print(g.json, status, () => formatStatus(status));
    return status.healthy ? 0 : 2;
  }
  // --watch: redraw in place on a terminal (like `watch`), one JSON document per line with --json; until Ctrl-C.
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  const intervalMs = Math.max(500, Number(opts.interval ?? 2) * 1000);
  let healthy = true;
  while (!stop.signal.aborted) {
    const status = await gather();
    healthy = status.healthy;
    if (g.json) process.stdout.write(`${JSON.stringify(status)}\n`);
    else
      process.stdout.write(
        `${process.stdout.isTTY ? '\x1b[H\x1b[2J' : '\n'}${new Date().toISOString()}  every ${intervalMs / 1000}s, Ctrl-C to stop\n\n${formatStatus(status)}\n`,
      );
    await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => {});
  }
  return healthy ? 0 : 2;
}

export async function downCommand(g: GlobalOptions): Promise<number> {
  const c = await openLocalCluster(g);
  const { localDown } = await import('../local/down.ts');
  const result = await localDown(c, streamReporter(process.stderr, Boolean(g.json)));
  print(g.json, result, () => (result.stopped.length ? `stopped ${result.stopped.join(', ')}; data kept in ${c.layout.root}` : 'nothing was running'));
  return 0;
}

export async function destroyCommand(g: GlobalOptions, opts: { yes?: boolean }): Promise<number> {
  const c = await openLocalCluster(g);
  const name = c.config.cluster.name;
  const repo = c.config.backups.enabled ? c.layout.backups.repoPath : undefined;
  const backups =
    repo === undefined
      ? ''
      : repo.startsWith(`${c.layout.root}/`)
        ? ', and its backup repository with every backup in it'
        : ` (its backup repository ${repo} is kept, but without the passwords file its encrypted backups cannot be read: keep a copy of ${c.layout.secretsFile})`;
  const loss = `This stops cluster "${name}" and deletes ${c.layout.root}: every database in it, its certificates and its passwords${backups}.`;
  if (!(await confirmed({ yes: opts.yes, action: `destroy "${name}"`, loss, expect: name, what: 'the cluster name' }))) return 1;
  const { localDestroy } = await import('../local/down.ts');
  const result = await localDestroy(c, streamReporter(process.stderr, Boolean(g.json)));
  print(g.json, { ...result, deleted: c.layout.root }, () => `destroyed ${name}; deleted ${c.layout.root}`);
  return 0;
}

export async function logsCommand(g: GlobalOptions, member: string | undefined, opts: { lines: string }): Promise<number> {
  const c = await openLocalCluster(g);
  const all = [
    ...c.specs.etcd,
    ...c.specs.patroni,
    c.specs.haproxy,
    c.specs.router,
    ...(c.config.pooler.enabled ? [c.specs.pooler] : []),
    ...(c.config.monitoring.enabled ? [c.specs.monitoring, ...c.specs.exporters] : []),
    ...(c.config.backups.enabled ? [c.specs.scheduler] : []),
  ];
  const picked = member ? all.filter((s) => s.id === member || s.id.endsWith(`-${member}`)) : all;
  if (picked.length === 0) {
    throw new GardenError('NOT_RUNNING', `no process called "${member}"`, {
      hint: `one of: ${all.map((s) => s.id).join(', ')}, or a member name (${c.topology.postgres.map((m) => m.name).join(', ')})`,
    });
  }
  for (const spec of picked) {
    const lines = await tail(spec.logFile, Number(opts.lines));
    process.stdout.write(`==> ${spec.id} (${spec.logFile}) <==\n${lines.join('\n')}\n`);
  }
  return 0;
}

export async function dcsCommand(g: GlobalOptions, verb: 'show' | 'clean' | 'restore', opts: { yes?: boolean; file?: string }): Promise<number> {
  const c = await openLocalCluster(g);
  const dcs = await import('../local/dcs.ts');
  if (verb === 'show') {
    const keys = await dcs.dcsShow(c);
    print(
      g.json,
      keys,
      () =>
        Object.entries(keys)
          .sort()
          .map(([k, v]) => `${k}  ${v.length > 120 ? `${v.slice(0, 117)}...` : v}`)
          .join('\n') || `no keys under ${dcs.scopePrefix(c)}`,
    );
    return 0;
  }
  if (verb === 'restore') {
    const result = await dcs.dcsRestore(c, opts.file!);
    print(
      g.json,
      result,
      () =>
        `restored ${result.restored.length} keys${result.kept.length ? `; kept ${result.kept.length} that exist now or need a lease: ${result.kept.join(', ')}` : ''}`,
    );
    return 0;
  }
  const scope = c.config.postgres.scope;
  const loss = `This deletes every key under ${dcs.scopePrefix(c)} in etcd (a backup is written first); a cluster that still uses them would lose its Patroni state.`;
  if (!(await confirmed({ yes: opts.yes, action: `clean ${dcs.scopePrefix(c)}`, loss, expect: scope, what: 'the scope' }))) return 1;
  const result = await dcs.dcsClean(c);
  print(g.json, result, () =>
    [
      `backup: ${result.backup}`,
      `deleted ${result.deleted.length} keys:`,
      ...result.deleted.map((k) => `  ${k}`),
      `put them back with: gardenos local dcs restore ${result.backup}`,
    ].join('\n'),
  );
  return 0;
}

export async function doctorCommand(g: GlobalOptions, opts: { kubeconfig?: string; verbose?: boolean }): Promise<number> {
  const c = await openLocalCluster(g);
  const { doctor } = await import('../doctor/run.ts');
  const r = await doctor(c, opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {});
  print(g.json, r, () => formatDoctor(r, Boolean(opts.verbose)));
  return r.healthy ? 0 : 2;
}

/** The backup scheduler's process (`local up` starts it when backups are on): runs until SIGTERM. */
export async function backupSchedulerCommand(g: GlobalOptions): Promise<number> {
  const c = await openLocalCluster(g);
  const { runSchedule } = await import('../local/scheduler.ts');
  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
  await runSchedule(c, (line) => process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), ...line })}\n`), stop.signal);
  return 0;
}
