// The local cluster's backups (backups.enabled, or `local up --with-backups`): pgBackRest's files, the
// stanza made at `up` with a first full backup, backups on demand, the restore test, and point-in-time
// recovery of the whole cluster through Patroni's custom bootstrap.
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CronExpressionParser } from 'cron-parser';
import pg from 'pg';
import { Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import { PatroniClient, readyLeader, type PatroniClusterView } from '../clients/patroni.ts';
import type { Config } from '../config/schema.ts';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import {
  backupFor,
  ensureStanza,
  recoverySettings,
  repositoryInfo,
  takeBackup,
  verifyBackup,
  type BackupInfo,
  type BackupType,
  type PgbackrestContext,
  type PitrResult,
  type RecoveryTarget,
  type RepositoryInfo,
  type SocketTarget,
  type VerifyResult,
  restoreInstance,
  targetOptions,
  chooseBackup,
  describeTarget,
  ARCHIVER_SQL,
  archiveErrorIn,
  archiverState,
  type ArchiverState,
} from '../ops/pgbackrest.ts';
import { USERS, type ClusterSecrets } from '../render/files.ts';
import { renderPatroniConfig } from '../render/patroni.ts';
import { stanzaOf } from '../render/pgbackrest.ts';
import { ensureDir, readJson, writeFileAtomic } from '../util/files.ts';
import { readStateFile } from '../util/state-file.ts';
import { waitFor } from '../util/wait.ts';
import { patroniUrl, postmasterPid, type LocalCluster } from './cluster.ts';
import { dcsClean, scopePrefix } from './dcs.ts';
import { patroniStopOrder } from './down.ts';
import { memberArchive } from './files.ts';
import { readSecrets } from './state.ts';
import { tail } from './supervisor.ts';

export function pgbackrestContext(c: LocalCluster): PgbackrestContext {
  const b = c.layout.backups;
  return {
    configFile: b.configFile,
    stanza: stanzaOf(c.config),
    ...(c.pgOwner ? { owner: c.pgOwner } : {}),
    pgpass: b.pgpass,
    binDir: c.layout.patroni(c.topology.postgres[0]!.name).binDir,
    repoPath: b.repoPath,
  };
}

/** The directories pgBackRest writes, owned by PostgreSQL's user (the archive_command runs as it). */
export function backupDirs(c: LocalCluster): string[] {
  const b = c.layout.backups;
  return [b.repoPath, b.logDir, b.lockDir, b.spoolDir];
}

/** `up`'s backups phase: the stanza exists and archiving works; the first full backup is taken when the repository has none. */
export async function ensureBackups(c: LocalCluster, report: Reporter): Promise<{ created: BackupInfo | undefined; info: RepositoryInfo }> {
  const ctx = pgbackrestContext(c);
  await ensureStanza(ctx).catch((e: unknown) => {
    const details = e instanceof GardenError ? e.details : [describe(e)];
    const notOn = details.some((d) => /archive_mode must be enabled|archive_command/.test(d));
    const foreign = details.some((d) => /do(es)? not match the database|system-id/i.test(d));
    throw new GardenError('STATE_CONFLICT', `backups: pgBackRest's check of stanza ${ctx.stanza} failed`, {
      details,
      hint: notOn
        ? 'archiving is configured but PostgreSQL runs without it (it was started before backups were enabled): gardenos local down && gardenos local up'
        : foreign
          ? `the repository ${ctx.repoPath} holds the backups of an earlier cluster with the same scope; nothing was changed. Keep them elsewhere (move the directory) or set another backups.repository.path, then run \`gardenos local up\` again`
          : `the repository is ${ctx.repoPath}; pgBackRest's logs are in ${c.layout.backups.logDir}`,
    });
  });
  let info = await repositoryInfo(ctx);
  let created: BackupInfo | undefined;
  if (info.backups.length === 0) {
    report({ kind: 'step', step: 'backups', member: 'full', status: 'start', detail: 'the first full backup' });
    created = await takeBackup(ctx, 'full');
    info = await repositoryInfo(ctx);
  }
  await writeBackupRecords(c, info);
  return { created, info };
}

export async function localBackup(c: LocalCluster, type: BackupType): Promise<BackupInfo> {
  requireBackups(c);
  const backup = await takeBackup(pgbackrestContext(c), type);
  await writeBackupRecords(c).catch(() => {}); // the scheduler's next minute writes them otherwise
  return backup;
}

export async function localBackupList(c: LocalCluster): Promise<RepositoryInfo & { lastVerified: VerifyResult | null }> {
  requireBackups(c);
  const info = await repositoryInfo(pgbackrestContext(c));
  return { ...info, lastVerified: await readVerified(c) };
}

function requireBackups(c: LocalCluster): void {
  if (!c.config.backups.enabled) {
    throw new GardenError('STATE_CONFLICT', `cluster ${c.config.cluster.name} has no backups configured`, {
      hint: 'turn them on: backups.enabled: true in gardenos.yaml, or `gardenos local up --with-backups`; a logical dump works without: gardenos local db backup --logical',
    });
  }
}

async function clusterView(c: LocalCluster): Promise<PatroniClusterView | undefined> {
  for (const m of c.topology.postgres) {
    const view = await new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs: 2000 }).cluster().catch(() => undefined);
    if (view) return view;
  }
  return undefined;
}

const socketTarget = (c: LocalCluster, member: string, secrets: ClusterSecrets): SocketTarget => ({
  socketDir: c.layout.patroni(member).socketDir,
  port: c.config.postgres.port,
  user: USERS.superuser,
  password: secrets.superuserPassword,
});

/** Switches the primary to a new WAL segment and waits until the finished one is in the repository. */
async function switchAndArchive(c: LocalCluster, leader: string, secrets: ClusterSecrets): Promise<void> {
  const t = socketTarget(c, leader, secrets);
  const client = new pg.Client({ host: t.socketDir, port: t.port, user: t.user, password: t.password, database: 'postgres', connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    // A restore point is a WAL record written now: the segment is never empty, so the switch always
    // happens, and a recovery to any earlier point finds a record after it (and stops there).
    await client.query("SELECT pg_create_restore_point('gardenos')");
    const segment = (await client.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')).rows[0]!.w;
    const deadline = Date.now() + c.config.backups.archiveTimeoutSeconds * 1000;
    for (;;) {
      const s = (
        await client.query<{ last: string | null; failed: string | null }>('SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver')
      ).rows[0]!;
      // Segment names sort in WAL order within a timeline; a newer timeline's names sort after.
      if (s.last !== null && s.last.slice(8) >= segment.slice(8)) return;
      if (Date.now() > deadline) {
        throw new GardenError(
          'TIMEOUT',
          `WAL segment ${segment} did not reach the repository within ${c.config.backups.archiveTimeoutSeconds} s (archiving is stalled)`,
          {
            details: s.failed ? [`last failed segment: ${s.failed}`] : [],
            hint: `the primary's log says why: gardenos local logs patroni-${leader}; pgBackRest's: ${c.layout.backups.logDir}`,
          },
        );
      }
      await sleep(200);
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * `db backup verify`: the restore test of a backup (the newest by default), counted against an
 * asynchronous standby where there is one (pausing a synchronous one's replay would not block commits,
 * but an asynchronous one is the cheaper witness). The result is recorded for `db backup list` and status.
 */
export async function localVerify(c: LocalCluster, label: string | undefined, report: Reporter): Promise<VerifyResult> {
  requireBackups(c);
  const ctx = pgbackrestContext(c);
  const secrets = await readSecrets(c.layout);
  if (!secrets) throw new GardenError('STATE_CONFLICT', `cluster ${c.config.cluster.name} has no secrets file; was it ever started?`);
  const info = await repositoryInfo(ctx);
  const backup = label ? info.backups.find((b) => b.label === label) : info.backups.at(-1);
  if (!backup)
    throw new GardenError('STATE_CONFLICT', label ? `the repository has no backup ${label}` : 'the repository holds no backup yet', {
      hint: 'list them: gardenos local db backup list',
    });
  const view = await clusterView(c);
  const leader = view?.members.find((m) => m.role === 'leader' && m.state === 'running');
  const standbys = (view?.members ?? []).filter(
    (m) => m.role !== 'leader' && m.role !== 'standby_leader' && (m.state === 'streaming' || m.state === 'running'),
  );
  const witness = standbys.find((m) => m.role === 'replica') ?? standbys[0];
  if (!leader || !witness)
    throw new GardenError('NOT_RUNNING', 'a restore test needs a running leader and a streaming standby to compare with', {
      hint: 'gardenos local status says what is missing',
    });
  const result = await verifyBackup(ctx, {
    backup,
    standby: socketTarget(c, witness.name, secrets),
    switchWal: () => switchAndArchive(c, leader.name, secrets),
    workDir: join(c.layout.backups.verifyDir, backup.label),
    port: c.config.postgres.port + 100,
    report,
  });
  await writeFileAtomic(c.layout.backups.recordFile, `${JSON.stringify(result, null, 2)}\n`, 0o644);
  await writeBackupRecords(c).catch(() => {});
  return result;
}

/**
 * `db restore --to`: the whole cluster rebuilt at a point in time. A safety backup first (when a leader
 * runs), then every member stopped, the data directories moved aside, Patroni's keys cleaned (backed up),
 * and the first member bootstrapped by Patroni from the chosen backup plus archived WAL up to the target;
 * the others are then copied from it. The moved-aside directories are removed once the leader is back.
 */
export async function pointInTimeRestore(
  c: LocalCluster,
  target: RecoveryTarget,
  opts: { from?: string; report: Reporter; timeoutMs: number },
): Promise<PitrResult> {
  requireBackups(c);
  const started = Date.now();
  const { report } = opts;
  const ctx = pgbackrestContext(c);
  const secrets = await readSecrets(c.layout);
  if (!secrets) throw new GardenError('STATE_CONFLICT', `cluster ${c.config.cluster.name} has no secrets file; was it ever started?`);
  // A target the repository cannot reach is refused before anything is touched.
  await checkTarget(c, target, opts.from);

  // The safety backup, while the cluster still runs: what is there now stays restorable.
  let safetyBackup: string | null = null;
  const view = await clusterView(c);
  const leader = view?.members.find((m) => m.role === 'leader' && m.state === 'running');
  if (leader) {
    report({ kind: 'step', step: 'safety backup', status: 'start' });
    await switchAndArchive(c, leader.name, secrets);
    safetyBackup = (await takeBackup(ctx, 'incr')).label;
    report({ kind: 'step', step: 'safety backup', status: 'done', detail: safetyBackup });
  }
  const info = await repositoryInfo(ctx);
  const from = backupFor(opts.from ? { ...info, backups: info.backups.filter((b) => b.label === opts.from) } : info, target);

  report({ kind: 'step', step: 'stop', status: 'start' });
  // The scheduler too: no scheduled backup may start against a cluster being rebuilt.
  const scheduled = (await c.supervisor.pid(c.specs.scheduler)) !== undefined;
  for (const spec of [c.specs.scheduler, c.specs.router, ...(await patroniStopOrder(c))]) await c.supervisor.stop(spec, { graceMs: 60_000 });
  for (const m of c.topology.postgres) {
    if ((await postmasterPid(c, m.name)) !== undefined)
      throw new GardenError('STATE_CONFLICT', `PostgreSQL of ${m.name} still runs after its Patroni stopped; nothing was changed`, {
        hint: 'gardenos local down, then run the restore again',
      });
  }
  report({ kind: 'step', step: 'stop', status: 'done', detail: 'router and every Patroni member' });
  // The replicas must be copied from the restored leader: every backup in the repository is of the old
  // history (the newest even from after the target), so none may seed them. The record comes back with the
  // new timeline's first full backup, below.
  await rm(c.layout.backups.newestFile, { force: true });

  const aside = `before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const moved: [string, string][] = [];
  for (const m of c.topology.postgres) {
    const dataDir = c.layout.patroni(m.name).dataDir;
    const to = `${dataDir}.${aside}`;
    if (
      await rename(dataDir, to).then(
        () => true,
        () => false,
      )
    )
      moved.push([dataDir, to]);
  }
  const dcs = await dcsClean(c).catch((e: unknown) => {
    throw new GardenError(
      'STATE_CONFLICT',
      `cleaning Patroni's keys under ${scopePrefix(c)} failed; the data directories are kept beside their places (*.${aside})`,
      { details: [describe(e)] },
    );
  });
  report({ kind: 'step', step: 'prepare', status: 'done', detail: `data directories moved aside (*.${aside}); Patroni's keys backed up to ${dcs.backup}` });

  // The first member bootstraps from the backup; its patroni.yml names the method until it is the leader.
  const first = c.topology.postgres[0]!;
  const f = c.layout.patroni(first.name);
  const archive = memberArchive(c, first.name)!;
  const command = [
    'pgbackrest',
    `--config=${c.layout.backups.configFile}`,
    `--stanza=${ctx.stanza}`,
    `--pg1-path=${f.dataDir}`,
    `--set=${from.label}`,
    // Recovery settings are Patroni's (recovery_conf): pgBackRest only lays the files down.
    '--type=none',
    'restore',
  ].join(' ');
  const restoring = renderPatroniConfig({
    config: c.config,
    topology: c.topology,
    member: first,
    files: f,
    secrets,
    archive,
    restore: { command, recoveryConf: recoverySettings(target, archive.restoreCommand) },
  });
  await writeFileAtomic(f.configFile, restoring, 0o600, c.pgOwner);
  report({ kind: 'step', step: 'restore', member: first.name, status: 'start', detail: `${from.label} + WAL to ${describeTarget(target)}` });
  await c.supervisor.start(c.specs.patroni[0]!);
  const client = new PatroniClient(patroniUrl(c, first.address), { caFile: c.layout.ca.cert, timeoutMs: 2000 });
  await waitFor(
    `${first.name} to restore and become the leader (its log: ${c.layout.log(`patroni-${first.name}`)})`,
    async () => {
      const v = await client.cluster().catch(() => undefined);
      return v?.members.some((m) => m.name === first.name && m.role === 'leader' && m.state === 'running') ?? false;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: 250 },
  );
  // Back to the plain configuration (the bootstrap section only matters to a member that initialises).
  await writeFileAtomic(
    f.configFile,
    renderPatroniConfig({ config: c.config, topology: c.topology, member: first, files: f, secrets, archive }),
    0o600,
    c.pgOwner,
  );
  report({ kind: 'step', step: 'restore', member: first.name, status: 'done', detail: 'leader' });

  report({ kind: 'step', step: 'replicas', status: 'start' });
  for (const spec of [...c.specs.patroni.slice(1), c.specs.router]) await c.supervisor.start(spec);
  await waitFor(
    'every member to run again',
    async () => {
      const v = await client.cluster().catch(() => undefined);
      return v !== undefined && readyLeader(v, { members: c.topology.postgres.length, synchronous: c.config.postgres.synchronousMode }) === first.name;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: 250 },
  );
  report({ kind: 'step', step: 'replicas', status: 'done' });
  for (const [, to] of moved) await rm(to, { recursive: true, force: true });
  // The restored cluster runs on a new timeline that forked before any later backup: the backups from
  // before the restore cannot bring it back to where it is now. A full backup of it starts its history.
  report({ kind: 'step', step: 'full backup', status: 'start', detail: "the new timeline's first" });
  const newBackup = (await takeBackup(ctx, 'full')).label;
  await writeBackupRecords(c);
  report({ kind: 'step', step: 'full backup', status: 'done', detail: newBackup });
  if (scheduled) await c.supervisor.start(c.specs.scheduler);
  return {
    target: describeTarget(target),
    from: from.label,
    leader: first.name,
    safetyBackup,
    newBackup,
    dcsBackup: dcs.backup,
    durationMs: Date.now() - started,
  };
}

export interface BesideResult {
  target: string;
  from: string;
  /** Where it runs: a Unix socket only (no TCP), with the cluster's superuser and password. */
  socketDir: string;
  port: number;
  user: string;
  dataDir: string;
  logFile: string;
  /** What to run to reach it. */
  psql: string;
  durationMs: number;
}

/**
 * `db restore --to … --beside`: the cluster's backup plus archived WAL up to the target, restored into a
 * standalone instance beside the running cluster (its own directory, socket and port; no TCP; never
 * archiving), left running to read from — the cluster itself is not touched. One at a time; `--stop-beside`
 * (or `local down`) stops and removes it.
 */
export async function restoreBeside(c: LocalCluster, target: RecoveryTarget, opts: { from?: string; report: Reporter }): Promise<BesideResult> {
  requireBackups(c);
  const started = Date.now();
  const secrets = await readSecrets(c.layout);
  if (!secrets) throw new GardenError('STATE_CONFLICT', `cluster ${c.config.cluster.name} has no secrets file; was it ever started?`);
  const running = await readJson<BesideResult>(c.layout.backups.besideRecord);
  if (running)
    throw new GardenError('STATE_CONFLICT', `a restored instance already runs beside the cluster (${running.target}, socket ${running.socketDir})`, {
      hint: 'stop it first: gardenos local db restore --stop-beside',
    });
  const from = await checkTarget(c, target, opts.from);
  const ctx = pgbackrestContext(c);
  // Whatever the primary wrote up to now must be in the repository for a target near now (or latest).
  const leader = (await clusterView(c))?.members.find((m) => m.role === 'leader' && m.state === 'running');
  if (leader) await switchAndArchive(c, leader.name, secrets);
  opts.report({ kind: 'step', step: 'restore beside', status: 'start', detail: `${from.label} + WAL to ${describeTarget(target)}` });
  const instance = await restoreInstance(ctx, {
    label: from.label,
    targetArgs: targetOptions(target),
    what: describeTarget(target),
    workDir: c.layout.backups.besideDir,
    port: c.config.postgres.port + 200,
    login: { user: USERS.superuser, password: secrets.superuserPassword },
  });
  const result: BesideResult = {
    target: describeTarget(target),
    from: from.label,
    socketDir: instance.socketDir,
    port: instance.port,
    user: USERS.superuser,
    dataDir: instance.dataDir,
    logFile: instance.logFile,
    psql: `psql "host=${instance.socketDir} port=${instance.port} user=${USERS.superuser} dbname=postgres"`,
    durationMs: Date.now() - started,
  };
  await writeFileAtomic(c.layout.backups.besideRecord, `${JSON.stringify(result, null, 2)}\n`, 0o644);
  opts.report({ kind: 'step', step: 'restore beside', status: 'done', detail: `running on ${instance.socketDir}, port ${instance.port}` });
  return result;
}

/** The backup a restore to `target` would start from (the one named by `from`, if given); refuses what the repository cannot reach. */
export async function checkTarget(c: LocalCluster, target: RecoveryTarget, from?: string): Promise<BackupInfo> {
  requireBackups(c);
  return chooseBackup(await repositoryInfo(pgbackrestContext(c)), target, from, 'gardenos local db backup list');
}

const verifiedSchema = z.looseObject({
  label: z.string(),
  lsn: z.string(),
  verifiedAt: z.string(),
  durationMs: z.number(),
  amcheck: z.string(),
  databases: z.array(z.looseObject({ name: z.string(), tables: z.number(), rows: z.number() })),
});
const runSchema = z.looseObject({
  kind: z.enum(['full', 'diff', 'incr', 'verify']),
  at: z.string(),
  ok: z.boolean(),
  label: z.string().optional(),
  error: z.string().optional(),
  durationMs: z.number(),
});
const scheduleStateSchema = z.partialRecord(z.enum(['full', 'diff', 'incr', 'verify']), runSchema);

/** The last restore test's record; a damaged one is named with how to recover. */
export async function readVerified(c: LocalCluster): Promise<VerifyResult | null> {
  return (
    ((await readStateFile(c.layout.backups.recordFile, verifiedSchema, 'delete it; the next `gardenos local db backup verify` writes it again')) as
      | VerifyResult
      | undefined) ?? null
  );
}

export interface BackupStatus {
  readable: boolean;
  /** The primary's archiver: null when no member answers. */
  archiver: ArchiverState | null;
  newest: { label: string; type: BackupType; stoppedAt: string; ageSeconds: number } | null;
  walArchivedUpTo: string | null;
  lastVerified: { label: string; verifiedAt: string } | null;
  /** The scheduler process: running, the next backup it will take, and its last run of each kind. */
  scheduler: { running: boolean; next: { kind: BackupType; at: string } | null; lastRuns: ScheduleState };
  error?: string;
}

/** For `status`: the newest backup and its age, how far WAL is archived, and the last restore test. */
export async function backupStatus(c: LocalCluster, timeoutMs: number): Promise<BackupStatus> {
  const verified = await readVerified(c).catch(() => null);
  const lastVerified = verified ? { label: verified.label, verifiedAt: verified.verifiedAt } : null;
  const archiver = await primaryArchiver(c, timeoutMs);
  const next = nextRuns(c.config.backups.schedule, new Date())[0];
  const scheduler = {
    running: (await c.supervisor.pid(c.specs.scheduler)) !== undefined,
    next: next ? { kind: next.kind, at: next.at.toISOString() } : null,
    lastRuns: await readScheduleState(c).catch(() => ({})),
  };
  try {
    const info = await repositoryInfo(pgbackrestContext(c), { timeoutMs: Math.max(timeoutMs, 5000) });
    const b = info.backups.at(-1);
    return {
      readable: true,
      archiver,
      scheduler,
      newest: b ? { label: b.label, type: b.type, stoppedAt: b.stoppedAt, ageSeconds: Math.round((Date.now() - Date.parse(b.stoppedAt)) / 1000) } : null,
      walArchivedUpTo: info.archive.max,
      lastVerified,
    };
  } catch (e) {
    return { readable: false, archiver, scheduler, newest: null, walArchivedUpTo: null, lastVerified, error: describe(e) };
  }
}

/** The archiver of whichever member is primary, asked through each member's socket; null when none answers. */
async function primaryArchiver(c: LocalCluster, timeoutMs: number): Promise<BackupStatus['archiver']> {
  const secrets = await readSecrets(c.layout).catch(() => undefined);
  if (!secrets) return null;
  const answers = await Promise.all(
    c.topology.postgres.map(async (m) => {
      const t = socketTarget(c, m.name, secrets);
      const client = new pg.Client({
        host: t.socketDir,
        port: t.port,
        user: t.user,
        password: t.password,
        database: 'postgres',
        connectionTimeoutMillis: timeoutMs,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        const r = await client.query<{ standby: boolean; archived: string | null; archivedAt: Date | null; failed: string | null; failedAt: Date | null }>(
          ARCHIVER_SQL,
        );
        return r.rows[0];
      } catch {
        return undefined;
      } finally {
        await client.end().catch(() => {});
      }
    }),
  );
  const at = answers.findIndex((x) => x && !x.standby);
  const a = answers[at];
  if (!a) return null;
  const state = archiverState(a, undefined);
  if (!state.failing) return state;
  // While failing, the reason from the member's Patroni log (PostgreSQL's stderr goes there), its tail only.
  return archiverState(a, archiveErrorIn(await tail(c.layout.log(`patroni-${c.topology.postgres[at]!.name}`), 10_000)));
}

export interface ScheduledRun {
  kind: BackupType | 'verify';
  at: string;
  ok: boolean;
  label?: string;
  error?: string;
  durationMs: number;
}

export type ScheduleState = Partial<Record<ScheduledRun['kind'], ScheduledRun>>;

/** The next time each kind of backup is due after `from`; a full and a diff due together run as the full. */
export function nextRuns(schedule: Config['backups']['schedule'], from: Date): { kind: BackupType; at: Date }[] {
  const runs = (['full', 'diff', 'incr'] as const).flatMap((kind) => {
    const expression = schedule[kind];
    return expression ? [{ kind, at: CronExpressionParser.parse(expression, { currentDate: from }).next().toDate() }] : [];
  });
  return runs.sort((a, b) => a.at.getTime() - b.at.getTime() || order(a.kind) - order(b.kind));
}

const order = (k: BackupType) => ['full', 'diff', 'incr'].indexOf(k);

export async function readScheduleState(c: LocalCluster): Promise<ScheduleState> {
  return (
    ((await readStateFile(c.layout.backups.scheduleStateFile, scheduleStateSchema, 'delete it; the scheduler writes it again after its next run')) as
      | ScheduleState
      | undefined) ?? {}
  );
}

/**
 * The backup metrics node-exporter's textfile collector serves (monitoring.enabled): the newest backup
 * of each type, since when no restore test has succeeded, how the last one went, and each scheduled run's
 * outcome. Written atomically by the scheduler after every run and every minute; its timestamp tells
 * Prometheus the scheduler is alive (GardenOSBackupSchedulerSilent). `info` undefined: the repository
 * could not be read.
 */
export async function backupMetrics(c: LocalCluster, info: RepositoryInfo | undefined, now = Date.now()): Promise<string> {
  const registry = new Registry();
  const gauge = <L extends string>(name: string, help: string, labelNames: L[] = []) => new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const seconds = (iso: string) => Date.parse(iso) / 1000;
  gauge('gardenos_backup_metrics_timestamp_seconds', 'When the backup scheduler last wrote these metrics').set(now / 1000);
  const readable = gauge('gardenos_backup_repository_readable', '1 when pgBackRest could read the repository');
  const [verified, runs] = await Promise.all([readVerified(c).catch(() => null), readScheduleState(c).catch((): ScheduleState => ({}))]);
  readable.set(info ? 1 : 0);
  if (info) {
    const newest = new Map<BackupType, number>();
    for (const b of info.backups) newest.set(b.type, Math.max(newest.get(b.type) ?? 0, seconds(b.stoppedAt)));
    const last = gauge('gardenos_backup_last_success_timestamp_seconds', 'When the newest backup of each type finished', ['type']);
    for (const [type, at] of newest) last.set({ type }, at);
    // Untested since the last successful restore test, or since the oldest backup when none has run.
    const oldest = info.backups[0];
    const since = verified ? seconds(verified.verifiedAt) : oldest ? seconds(oldest.stoppedAt) : undefined;
    if (since !== undefined)
      gauge('gardenos_backup_untested_since_timestamp_seconds', 'The last successful restore test, or the oldest backup if none has succeeded').set(since);
  }
  // The newest restore test, scheduled or by hand: did it pass?
  const scheduledVerify = runs.verify;
  if (verified || scheduledVerify) {
    const failedLater = scheduledVerify && !scheduledVerify.ok && (!verified || Date.parse(scheduledVerify.at) > Date.parse(verified.verifiedAt));
    gauge('gardenos_backup_last_restore_test_success', '1 when the newest restore test passed').set(failedLater ? 0 : 1);
  }
  const failed = gauge('gardenos_backup_scheduled_run_failed', '1 when the last scheduled run of this kind failed', ['kind']);
  for (const run of Object.values(runs)) failed.set({ kind: run.kind }, run.ok ? 0 : 1);
  return registry.metrics();
}

/**
 * What others read about the repository, from one `pgbackrest info`: when the newest backup finished (each
 * member's replica-from-backup script decides with it whether to restore or copy from the leader) and,
 * with monitoring on, the metrics file in node-exporter's textfile directory.
 */
export async function writeBackupRecords(c: LocalCluster, given?: RepositoryInfo): Promise<void> {
  if (!c.config.backups.enabled) return;
  const info = given ?? (await repositoryInfo(pgbackrestContext(c), { timeoutMs: 30_000 }).catch(() => undefined));
  const newest = info?.backups.at(-1);
  if (newest) await writeFileAtomic(c.layout.backups.newestFile, `${Math.floor(Date.parse(newest.stoppedAt) / 1000)}\n`, 0o644);
  if (!c.config.monitoring.enabled) return;
  await ensureDir(c.layout.monitoring.textfileDir, 0o755);
  await writeFileAtomic(join(c.layout.monitoring.textfileDir, 'gardenos-backups.prom'), await backupMetrics(c, info), 0o644);
}
