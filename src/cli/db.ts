// `gardenos local db …` and `gardenos db …`: operations on the PostgreSQL cluster through
// Patroni; (local) logical backup, restore and migration through PostgreSQL's own tools, and
// pgBackRest's backups, restore tests and point-in-time recovery.
import { join, resolve } from 'node:path';
import { GardenError } from '../errors.ts';
import { streamReporter } from '../log/events.ts';
import { openLocalCluster, patroniAccess, type LocalCluster } from '../local/cluster.ts';
import type { PgTarget } from '../ops/backup.ts';
import type { PitrResult, RepositoryInfo } from '../ops/pgbackrest.ts';
import { USERS } from '../render/files.ts';
import { reinitMember, restartMember, switchover, type OperationResult, type PatroniAccess } from '../ops/patroni.ts';
import { confirmed } from './confirm.ts';
import type { GlobalOptions } from './local.ts';
import { print, table } from './output.ts';

export interface OperationOptions {
  to?: string;
  yes?: boolean;
  timeout?: string;
}

function report(json: boolean | undefined, r: OperationResult): void {
  if (json) {
    print(true, r, () => '');
    return;
  }
  const headline =
    r.operation === 'switchover' || r.operation === 'failover'
      ? `${r.operation}: ${r.before.leader ?? 'no leader'} → ${r.after.leader} in ${(r.durationMs / 1000).toFixed(1)} s${'pausedMs' in r ? ` (pooler paused ${((r.pausedMs as number) / 1000).toFixed(1)} s; its clients kept their connections)` : ''}`
      : `${r.operation} of ${r.member} done in ${(r.durationMs / 1000).toFixed(1)} s (leader: ${r.after.leader ?? 'none'})`;
  process.stdout.write(
    `${headline}\n\n${table(
      ['MEMBER', 'ROLE', 'STATE', 'TL', 'LAG'],
      r.after.members.map((m) => [m.name, m.role, m.state, String(m.timeline ?? '-'), String(m.lag ?? '-')]),
    )}\n`,
  );
}

/**
 * `gardenos db switchover|failover|restart|reinit` on the production platform: Patroni's REST API on
 * the postgres nodes (whatever its members are called: on Kubernetes, the StatefulSet's pods), with the
 * REST password and CA from the secrets directory.
 */
export async function platformDbCommand(
  opts: OperationOptions & { config: string; secretsDir?: string; json?: boolean; kubeconfig?: string; pause?: boolean },
  op: 'switchover' | 'failover' | 'restart' | 'reinit',
  member: string | undefined,
): Promise<number> {
  const { loadConfig } = await import('../config/load.ts');
  const { defaultSecretsDir, readPlatformSecrets } = await import('../platform/secrets.ts');
  const { hostPort, productionTopology } = await import('../render/topology.ts');
  const { discoverAccess } = await import('../ops/patroni.ts');
  const config = await loadConfig(opts.config);
  const secretsDir = resolve(opts.secretsDir ?? defaultSecretsDir(opts.config));
  const secrets = await readPlatformSecrets(secretsDir);
  const access = await discoverAccess({
    scope: config.postgres.scope,
    seeds: productionTopology(config).postgres.map((m) => `https://${hostPort(m.address, config.postgres.patroniPort)}`),
    caFile: join(secretsDir, 'pki', 'ca.crt'),
    auth: { username: USERS.restApi, password: secrets.restApiPassword },
  });
  // With the pooler on, a planned switchover pauses its pods (through the Kubernetes API) so their clients wait instead of failing.
  let paused: PausedSwitchoverFn | undefined;
  if (op === 'switchover' && config.pooler.enabled && opts.pause !== false) {
    const { probeTarget } = await import('./platform.ts');
    const { probe } = await probeTarget(opts);
    if (!probe.kubeconfig)
      throw new GardenError('CONFIG_NOT_FOUND', "pooler.enabled: pausing the pooler's pods through the switchover needs the platform's kubeconfig", {
        hint: '--kubeconfig FILE (`gardenos kubeconfig` writes one), or --no-pause to switch over with the pooler running (its clients see errors)',
      });
    const { loadKubeConfig } = await import('../clients/kubernetes.ts');
    const { platformPausedSwitchover } = await import('../platform/pooler.ts');
    const kc = await loadKubeConfig(probe.kubeconfig);
    const report = streamReporter(process.stderr, Boolean(opts.json));
    paused = (a, candidate, timeoutMs) => platformPausedSwitchover(kc, config, a, candidate, timeoutMs, report);
  }
  return operate(access, op, member, opts, { json: opts.json, ...(paused ? { paused } : {}) });
}

/** The platform's kubeconfig (named, or the one `up` wrote beside the config) and config: what the backup commands need. */
async function platformKube(opts: { config: string; secretsDir?: string; kubeconfig?: string }) {
  const { probeTarget } = await import('./platform.ts');
  const { config, probe } = await probeTarget(opts);
  if (!probe.kubeconfig)
    throw new GardenError('CONFIG_NOT_FOUND', "the platform's backups are reached through Kubernetes, and no kubeconfig was found", {
      hint: '--kubeconfig FILE, or run where `gardenos up` wrote one beside the config file',
    });
  const { loadKubeConfig } = await import('../clients/kubernetes.ts');
  return { config, kc: await loadKubeConfig(probe.kubeconfig) };
}

/** `gardenos db backup`: a backup on the platform now, as its schedule takes them (a Job from the CronJob's template). */
export async function platformBackupCommand(opts: {
  config: string;
  secretsDir?: string;
  kubeconfig?: string;
  type?: 'full' | 'diff' | 'incr';
  timeout: string;
  json?: boolean;
}): Promise<number> {
  const { config, kc } = await platformKube(opts);
  const { platformBackup } = await import('../platform/backups.ts');
  const type = opts.type ?? 'incr';
  const r = await platformBackup(kc, config, type, { report: streamReporter(process.stderr, Boolean(opts.json)), timeoutMs: Number(opts.timeout) * 1000 });
  const b = r.backup;
  print(opts.json, r, () =>
    [
      `${b.type} backup ${b.label} in ${(r.durationMs / 1000).toFixed(1)} s (Job ${r.job}): ${mib(b.sizeBytes)} of database, ${mib(b.repositoryBytes)} stored`,
      ...(r.verify
        ? [
            `restore test: ${r.verify.ok ? `passed in ${r.verify.seconds ?? '?'} s (pg_amcheck clean, ${r.verify.databases ?? '?'} databases)` : `FAILED: ${r.verify.error}`}`,
          ]
        : []),
    ].join('\n'),
  );
  return 0;
}

/** `gardenos db backup list`: the platform repository's backups, archived WAL and last restore test. */
export async function platformBackupListCommand(opts: { config: string; secretsDir?: string; kubeconfig?: string; json?: boolean }): Promise<number> {
  const { config, kc } = await platformKube(opts);
  const { platformBackupList } = await import('../platform/backups.ts');
  const info = await platformBackupList(kc, config);
  const v = info.lastVerify;
  print(opts.json, info, () =>
    [
      backupTable(info),
      '',
      v
        ? `last restore test: ${v.label} at ${v.at}: ${v.ok ? `passed (pg_amcheck clean, ${v.databases ?? '?'} databases, ${v.seconds ?? '?'} s)` : `FAILED: ${v.error}`}`
        : 'no restore test yet: each scheduled full backup runs one (backups.schedule.verifyAfterFull), or `gardenos db backup --type full`',
    ].join('\n'),
  );
  return 0;
}

/** A planned switchover behind a paused pooler: the local one, or the platform's pods. */
type PausedSwitchoverFn = (access: PatroniAccess, candidate: string | undefined, timeoutMs: number) => Promise<OperationResult & { pausedMs: number }>;

export async function dbOperationCommand(
  g: GlobalOptions,
  op: 'switchover' | 'failover' | 'restart' | 'reinit',
  member: string | undefined,
  opts: OperationOptions,
): Promise<number> {
  const c = await openLocalCluster(g);
  // A planned switchover behind a running pooler: its clients wait instead of losing their connections.
  const pooled = op === 'switchover' && c.config.pooler.enabled && (await c.supervisor.pid(c.specs.pooler)) !== undefined;
  const paused: PausedSwitchoverFn | undefined = pooled
    ? async (access, candidate, timeoutMs) => (await import('../local/pooler.ts')).pausedSwitchover(c, access, candidate, timeoutMs)
    : undefined;
  return operate(await patroniAccess(c), op, member, opts, { json: g.json, ...(paused ? { paused } : {}) });
}

async function operate(
  access: PatroniAccess,
  op: 'switchover' | 'failover' | 'restart' | 'reinit',
  member: string | undefined,
  opts: OperationOptions,
  where: { json?: boolean | undefined; paused?: PausedSwitchoverFn },
): Promise<number> {
  const timeoutMs = Number(opts.timeout ?? 120) * 1000;
  const scope = access.scope;
  const ask = (action: string, loss: string, expect: string, what: string) => confirmed({ yes: opts.yes, action, loss, expect, what });
  let result: OperationResult;
  switch (op) {
    case 'switchover':
    case 'failover': {
      const { planSwitchover } = await import('../ops/patroni.ts');
      const plan = await planSwitchover(access, op, opts.to);
      const pooled = op === 'switchover' ? where.paused : undefined;
      const cut = pooled
        ? 'clients of the pooled endpoint wait a moment; direct connections to the primary are cut'
        : 'open connections to the primary are cut';
      const loss = `This demotes ${plan.leader ?? 'no leader (there is none)'} and promotes ${plan.candidate ?? 'the best replica'} in cluster ${scope}; ${cut}.`;
      if (!(await ask(`${op} ${scope}`, loss, scope, 'the scope'))) return 1;
      result = pooled ? await pooled(access, opts.to, timeoutMs) : await switchover(access, op, opts.to, timeoutMs);
      break;
    }
    case 'restart':
      if (!(await ask(`restart ${member}`, `This restarts PostgreSQL on ${member}; its connections are cut.`, member!, 'the member name'))) return 1;
      result = await restartMember(access, member!, timeoutMs);
      break;
    case 'reinit':
      if (
        !(await ask(
          `reinitialise ${member}`,
          `This deletes ${member}'s data directory and copies it again from the leader; nothing on ${member} that the leader lacks survives.`,
          member!,
          'the member name',
        ))
      )
        return 1;
      result = await reinitMember(access, member!, timeoutMs);
      break;
  }
  report(where.json, result);
  return 0;
}

/** The local cluster's primary through HAProxy, as the PostgreSQL tools reach it (password from the 0600 pgpass file). */
function clusterTarget(c: LocalCluster): PgTarget {
  return {
    host: c.topology.loadBalancer,
    port: c.config.haproxy.ports.primary,
    user: USERS.superuser,
    passFile: c.layout.pgpassFile,
    sslmode: 'verify-full',
    sslrootcert: c.layout.ca.cert,
    binDir: c.layout.patroni(c.topology.postgres[0]!.name).binDir,
    label: `cluster ${c.config.cluster.name}`,
  };
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

export async function backupCommand(
  g: GlobalOptions,
  opts: { type?: 'full' | 'diff' | 'incr'; logical?: boolean; out?: string; database?: string[] },
): Promise<number> {
  const c = await openLocalCluster(g);
  const logical = opts.logical || opts.out !== undefined || opts.database !== undefined || !c.config.backups.enabled;
  if (logical && opts.type)
    throw new GardenError('CONFIG_INVALID', `--type ${opts.type} is a pgBackRest backup type, and this would be a logical dump`, {
      hint: c.config.backups.enabled
        ? 'leave out --logical, --out and --database'
        : 'backups are not enabled: backups.enabled: true in gardenos.yaml, or `gardenos local up --with-backups`',
    });
  if (!logical) {
    const { localBackup } = await import('../local/backups.ts');
    const report = streamReporter(process.stderr, Boolean(g.json));
    report({ kind: 'step', step: 'backup', status: 'start', detail: `${opts.type ?? 'incr'} (pgBackRest, from a standby)` });
    const b = await localBackup(c, opts.type ?? 'incr');
    report({ kind: 'step', step: 'backup', status: 'done', detail: b.label });
    print(
      g.json,
      { kind: 'pgbackrest', backup: b },
      () =>
        `${b.type} backup ${b.label}: ${mib(b.sizeBytes)} of database, ${mib(b.repositoryBytes)} stored in ${c.layout.backups.repoPath}\nrestore a point in time with: gardenos local db restore --to <time|LSN|latest>`,
    );
    return 0;
  }
  const { backup } = await import('../ops/backup.ts');
  const dir = resolve(opts.out ?? join(c.layout.root, 'backups', stamp()));
  const manifest = await backup(clusterTarget(c), dir, {
    ...(opts.database ? { databases: opts.database } : {}),
    report: streamReporter(process.stderr, Boolean(g.json)),
  });
  print(
    g.json,
    { kind: 'logical', dir, manifest },
    () =>
      `logical backup of ${manifest.databases.length} database${manifest.databases.length === 1 ? '' : 's'} in ${dir}\nrestore with: gardenos local db restore ${dir}`,
  );
  return 0;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** A repository's stanza, archived WAL range and backups, as `db backup list` prints them (local and platform alike). */
function backupTable(info: RepositoryInfo): string {
  return [
    `stanza ${info.stanza}: ${info.status}; WAL archived ${info.archive.min ?? '-'} … ${info.archive.max ?? '-'}`,
    '',
    table(
      ['LABEL', 'TYPE', 'STARTED', 'CONSISTENT AT', 'SIZE', 'STORED', 'PRIOR'],
      info.backups.map((b) => [
        b.label,
        b.type + (b.error ? ' (checksum errors)' : ''),
        b.startedAt,
        `${b.stoppedAt} ${b.stopLsn ?? ''}`.trim(),
        mib(b.sizeBytes),
        mib(b.repositoryBytes),
        b.prior ?? '-',
      ]),
    ),
  ].join('\n');
}

export async function backupListCommand(g: GlobalOptions): Promise<number> {
  const c = await openLocalCluster(g);
  const { localBackupList } = await import('../local/backups.ts');
  const info = await localBackupList(c);
  print(g.json, info, () =>
    [
      backupTable(info),
      '',
      info.lastVerified
        ? `last restore test: ${info.lastVerified.label} at ${info.lastVerified.verifiedAt} (to ${info.lastVerified.lsn}, ${info.lastVerified.databases.length} databases)`
        : 'no restore test yet: gardenos local db backup verify',
    ].join('\n'),
  );
  return 0;
}

export async function backupVerifyCommand(g: GlobalOptions, opts: { set?: string }): Promise<number> {
  const c = await openLocalCluster(g);
  const { localVerify } = await import('../local/backups.ts');
  const r = await localVerify(c, opts.set, streamReporter(process.stderr, Boolean(g.json)));
  print(
    g.json,
    r,
    () =>
      `backup ${r.label} restored to ${r.lsn} and verified in ${(r.durationMs / 1000).toFixed(1)} s: pg_amcheck clean, row counts equal the source's in ${r.databases.map((d) => `${d.name} (${d.tables} tables, ${d.rows} rows)`).join(', ')}`,
  );
  return 0;
}

/** Backs up the databases an operation is about to overwrite, after confirmation; false when not confirmed. */
async function confirmOverwrite(
  c: LocalCluster,
  names: string[],
  what: string,
  yes: boolean | undefined,
  json: boolean | undefined,
): Promise<string | undefined | false> {
  const { backup, wouldOverwrite } = await import('../ops/backup.ts');
  const target = clusterTarget(c);
  const hit = await wouldOverwrite(target, names);
  if (hit.length === 0) return undefined;
  const loss = `${what} replaces the contents of ${hit.join(', ')} in cluster ${c.config.cluster.name}: what was written there since is lost (a backup of them is taken first).`;
  if (!(await confirmed({ yes, action: `${what.toLowerCase()} over ${hit.join(', ')}`, loss, expect: c.config.postgres.scope, what: 'the scope' })))
    return false;
  const safety = join(c.layout.root, 'backups', `before-${what.toLowerCase()}-${stamp()}`);
  await backup(target, safety, { databases: hit, report: streamReporter(process.stderr, Boolean(json)) });
  return safety;
}

export async function restoreCommand(
  g: GlobalOptions,
  dir: string | undefined,
  opts: { to?: string; from?: string; beside?: boolean; stopBeside?: boolean; timeout?: string; database?: string[]; yes?: boolean },
): Promise<number> {
  if (opts.stopBeside) {
    if (opts.to !== undefined || opts.beside || dir !== undefined)
      throw new GardenError('CONFIG_INVALID', '--stop-beside takes no target, directory or --beside');
    const c = await openLocalCluster(g);
    const { stopBeside } = await import('../local/down.ts');
    const stopped = await stopBeside(c);
    print(g.json, { stopped }, () =>
      stopped ? 'the restored instance beside the cluster is stopped and removed' : 'no restored instance runs beside the cluster',
    );
    return 0;
  }
  if (opts.beside && opts.to === undefined) throw new GardenError('CONFIG_INVALID', '--beside restores a point in time: it needs --to <time|LSN|latest>');
  if (opts.to !== undefined && opts.beside) {
    if (dir !== undefined || opts.database)
      throw new GardenError('CONFIG_INVALID', '--to restores from the backup repository; it takes no directory and no --database');
    return besideCommand(g, opts.to, opts);
  }
  if (opts.to !== undefined) {
    if (dir !== undefined || opts.database)
      throw new GardenError('CONFIG_INVALID', '--to restores the whole cluster from the backup repository; it takes no directory and no --database', {
        hint: 'a logical dump is restored with: gardenos local db restore <dir>',
      });
    return pitrCommand(g, opts.to, opts);
  }
  if (dir === undefined)
    throw new GardenError('CONFIG_INVALID', "restore what? give a logical dump's directory, or --to <time|LSN|latest> for point-in-time recovery");
  if (opts.from) throw new GardenError('CONFIG_INVALID', '--from names a pgBackRest backup; it goes with --to');
  const c = await openLocalCluster(g);
  const { restore, verifyBackup } = await import('../ops/backup.ts');
  const manifest = await verifyBackup(resolve(dir));
  const names = manifest.databases.map((d) => d.name).filter((n) => !opts.database?.length || opts.database.includes(n));
  const safety = await confirmOverwrite(c, names, 'Restore', opts.yes, g.json);
  if (safety === false) return 1;
  const result = await restore(clusterTarget(c), resolve(dir), manifest, {
    ...(opts.database ? { databases: opts.database } : {}),
    report: streamReporter(process.stderr, Boolean(g.json)),
  });
  print(g.json, { ...result, safetyBackup: safety ?? null }, () =>
    [
      `restored and verified: ${result.databases.map((d) => `${d.name} (${d.tables} tables, ${d.rows} rows)`).join(', ')}`,
      ...(safety ? [`what was there before is in ${safety}`] : []),
    ].join('\n'),
  );
  return 0;
}

async function besideCommand(g: GlobalOptions, to: string, opts: { from?: string }): Promise<number> {
  const c = await openLocalCluster(g);
  const { parseTarget } = await import('../ops/pgbackrest.ts');
  const { restoreBeside } = await import('../local/backups.ts');
  // Nothing of the cluster changes, so nothing to confirm.
  const r = await restoreBeside(c, parseTarget(to), { ...(opts.from ? { from: opts.from } : {}), report: streamReporter(process.stderr, Boolean(g.json)) });
  print(g.json, r, () =>
    [
      `restored ${r.from} to ${r.target} beside the cluster in ${(r.durationMs / 1000).toFixed(1)} s; the cluster was not touched`,
      `read it with: ${r.psql}   (the superuser's password, as for the cluster)`,
      'stop and remove it with: gardenos local db restore --stop-beside (local down stops it too)',
    ].join('\n'),
  );
  return 0;
}

/** What a restore to a point in time is about to do, for the confirmation: the same words local and platform. */
const pitrLoss = (what: string, target: string) =>
  `This rebuilds ${what} as it was at ${target}: every member is stopped and its data replaced; what was written after that point is no longer in the cluster (an incremental backup of the current state is taken first, and stays in the repository).`;

const pitrLines = (r: PitrResult) =>
  [
    `cluster restored to ${r.target} from ${r.from} in ${(r.durationMs / 1000).toFixed(1)} s; leader ${r.leader}`,
    ...(r.safetyBackup ? [`the state before the restore is kept in the repository as backup ${r.safetyBackup}`] : []),
    `a full backup of the restored cluster: ${r.newBackup}`,
    `Patroni's previous keys: ${r.dcsBackup}`,
  ].join('\n');

async function pitrCommand(g: GlobalOptions, to: string, opts: { from?: string; timeout?: string; yes?: boolean }): Promise<number> {
  const c = await openLocalCluster(g);
  const { describeTarget, parseTarget } = await import('../ops/pgbackrest.ts');
  const { checkTarget, pointInTimeRestore } = await import('../local/backups.ts');
  const target = parseTarget(to);
  // Asked only about a restore that can happen.
  await checkTarget(c, target, opts.from);
  if (
    !(await confirmed({
      yes: opts.yes,
      action: `restore ${c.config.postgres.scope} to ${describeTarget(target)}`,
      loss: pitrLoss(`cluster ${c.config.cluster.name}`, describeTarget(target)),
      expect: c.config.postgres.scope,
      what: 'the scope',
    }))
  )
    return 1;
  const r = await pointInTimeRestore(c, target, {
    ...(opts.from ? { from: opts.from } : {}),
    report: streamReporter(process.stderr, Boolean(g.json)),
    timeoutMs: Number(opts.timeout ?? 600) * 1000,
  });
  print(g.json, r, () => pitrLines(r));
  return 0;
}

/**
 * `gardenos db restore --to`: the platform's PostgreSQL StatefulSet rebuilt at a point in time from the repository pod
 * (a safety backup first), through the Kubernetes API and etcd; asks first.
 */
export interface PlatformRestoreOptions {
  config: string;
  secretsDir?: string;
  kubeconfig?: string;
  to?: string;
  from?: string;
  beside?: boolean;
  stopBeside?: boolean;
  yes?: boolean;
  timeout: string;
  json?: boolean;
}

export async function platformRestoreCommand(opts: PlatformRestoreOptions): Promise<number> {
  if (opts.stopBeside) {
    if (opts.to !== undefined || opts.beside) throw new GardenError('CONFIG_INVALID', '--stop-beside takes no target and no --beside');
    const { config, kc } = await platformKube(opts);
    const { platformStopBeside } = await import('../platform/restore.ts');
    const stopped = await platformStopBeside(kc, config);
    print(opts.json, { stopped }, () =>
      stopped ? 'the restored instance beside the cluster is stopped and removed' : 'no restored instance runs beside the cluster',
    );
    return 0;
  }
  if (opts.to === undefined)
    throw new GardenError('CONFIG_INVALID', 'restore to what? --to <time|LSN|latest>', { hint: 'gardenos db backup list shows what the repository can reach' });
  if (opts.beside) {
    const { config, kc } = await platformKube(opts);
    const { parseTarget } = await import('../ops/pgbackrest.ts');
    const { platformRestoreBeside } = await import('../platform/restore.ts');
    // Nothing of the cluster changes, so nothing to confirm.
    const r = await platformRestoreBeside(kc, config, parseTarget(opts.to), {
      ...(opts.from ? { from: opts.from } : {}),
      report: streamReporter(process.stderr, Boolean(opts.json)),
      timeoutMs: Number(opts.timeout) * 1000,
    });
    print(opts.json, r, () =>
      [
        `restored ${r.from} to ${r.target} beside the cluster in ${(r.durationMs / 1000).toFixed(1)} s (pod ${r.namespace}/${r.pod}); the cluster was not touched`,
        `read it with: ${r.psql}`,
        'stop and remove it with: gardenos db restore --stop-beside',
      ].join('\n'),
    );
    return 0;
  }
  const { config, kc } = await platformKube(opts);
  const { describeTarget, parseTarget } = await import('../ops/pgbackrest.ts');
  const { defaultSecretsDir, readPlatformSecrets } = await import('../platform/secrets.ts');
  const { platformCheckTarget, platformPointInTimeRestore } = await import('../platform/restore.ts');
  const target = parseTarget(opts.to);
  const secretsDir = resolve(opts.secretsDir ?? defaultSecretsDir(opts.config));
  const secrets = await readPlatformSecrets(secretsDir);
  await platformCheckTarget(kc, config, target, opts.from);
  if (
    !(await confirmed({
      yes: opts.yes,
      action: `restore ${config.postgres.scope} to ${describeTarget(target)}`,
      loss: pitrLoss(`the platform's PostgreSQL (${config.namespaces.database}/${config.postgres.scope})`, describeTarget(target)),
      expect: config.postgres.scope,
      what: 'the scope',
    }))
  )
    return 1;
  const r = await platformPointInTimeRestore({ kc, config, secretsDir, secrets }, target, {
    ...(opts.from ? { from: opts.from } : {}),
    report: streamReporter(process.stderr, Boolean(opts.json)),
    timeoutMs: Number(opts.timeout) * 1000,
  });
  print(opts.json, r, () => pitrLines(r));
  return 0;
}

export async function migrateCommand(g: GlobalOptions, opts: { from: string; database?: string[]; yes?: boolean }): Promise<number> {
  const c = await openLocalCluster(g);
  const { backup, listDatabases, restore, targetFromUrl } = await import('../ops/backup.ts');
  const target = clusterTarget(c);
  const source = targetFromUrl(opts.from, target.binDir);
  const report = streamReporter(process.stderr, Boolean(g.json));
  const names = opts.database?.length ? opts.database : (await listDatabases(source)).map((d) => d.name);
  const safety = await confirmOverwrite(c, names, 'Migration', opts.yes, g.json);
  if (safety === false) return 1;
  // The source's dump is kept: it is the record of what was copied, and a way back.
  const dir = join(c.layout.root, 'migrations', stamp());
  const manifest = await backup(source, dir, { databases: names, report });
  const result = await restore(target, dir, manifest, { report });
  print(g.json, { ...result, dump: dir, safetyBackup: safety ?? null }, () =>
    [
      `migrated from ${source.label} and verified row counts: ${result.databases.map((d) => `${d.name} (${d.tables} tables, ${d.rows} rows)`).join(', ')}`,
      `the source's dump is kept in ${dir}`,
      ...(safety ? [`what the cluster had before is in ${safety}`] : []),
    ].join('\n'),
  );
  return 0;
}
