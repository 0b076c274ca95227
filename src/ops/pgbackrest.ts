// pgBackRest, driven: stanza creation and checks, base backups, the repository's inventory, and the
// two ways a backup is read back — a point-in-time recovery of the cluster (run by Patroni's custom
// bootstrap, see local/restore.ts) and a restore test into a throwaway instance (verifyBackup here).
// Every command runs as PostgreSQL's user (the repository and the archive_command's files are its own),
// with the cluster's pgBackRest config; errors carry pgBackRest's own last lines.
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { countRows } from './backup.ts';
import { ensureDir, type Owner } from '../util/files.ts';

export interface PgbackrestContext {
  configFile: string;
  stanza: string;
  /** Who runs it (PostgreSQL's user when GardenOS runs as root). */
  owner?: Owner;
  /** libpq password file with the superuser's password (pgBackRest connects through each member's socket). */
  pgpass: string;
  /** PostgreSQL's binaries (for the throwaway instance of a restore test). */
  binDir: string;
  /** The repository's path, for messages. */
  repoPath: string;
}

export type BackupType = 'full' | 'diff' | 'incr';

const backupInfoSchema = z.looseObject({
  label: z.string(),
  type: z.enum(['full', 'diff', 'incr']),
  prior: z.string().nullable().optional(),
  timestamp: z.looseObject({ start: z.number(), stop: z.number() }),
  lsn: z.looseObject({ start: z.string(), stop: z.string() }).optional(),
  archive: z.looseObject({ start: z.string().nullable(), stop: z.string().nullable() }),
  info: z.looseObject({ size: z.number(), delta: z.number(), repository: z.looseObject({ size: z.number(), delta: z.number() }) }),
  error: z.boolean().optional(),
});

const stanzaInfoSchema = z.looseObject({
  name: z.string(),
  status: z.looseObject({ code: z.number(), message: z.string() }),
  backup: z.array(backupInfoSchema).default([]),
  archive: z.array(z.looseObject({ id: z.string(), min: z.string().nullable(), max: z.string().nullable() })).default([]),
});

export interface BackupInfo {
  label: string;
  type: BackupType;
  /** The backup it depends on (diff and incr). */
  prior: string | null;
  startedAt: string;
  stoppedAt: string;
  /** WAL position where the backup becomes consistent: the earliest point it can restore to. */
  stopLsn: string | null;
  /** The database's size and what the repository stores for this backup (compressed, delta). */
  sizeBytes: number;
  repositoryBytes: number;
  /** pgBackRest found page checksum errors while copying. */
  error: boolean;
}

export interface RepositoryInfo {
  stanza: string;
  status: string;
  backups: BackupInfo[];
  /** The archived WAL range, oldest to newest. */
  archive: { min: string | null; max: string | null };
}

/** Runs pgBackRest with this cluster's config; resolves with stdout, or rejects naming the command and pgBackRest's last error lines. */
export function runPgbackrest(ctx: PgbackrestContext, command: string, args: string[] = [], opts: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbackrest', [`--config=${ctx.configFile}`, `--stanza=${ctx.stanza}`, ...args, command], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', PGPASSFILE: ctx.pgpass, ...(process.env.TZ ? { TZ: process.env.TZ } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(ctx.owner ? { uid: ctx.owner.uid, gid: ctx.owner.gid } : {}),
      timeout: opts.timeoutMs ?? 30 * 60_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) =>
      reject(
        new GardenError('MISSING_PACKAGE', `cannot run pgbackrest: ${describe(e)}`, {
          hint: 'install it: apt-get install -y pgbackrest (scripts/install-deps.sh does)',
        }),
      ),
    );
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const lines = `${Buffer.concat(err).toString('utf8')}${Buffer.concat(out).toString('utf8')}`.trim().split('\n').filter(Boolean);
      reject(
        new GardenError('BACKEND_UNAVAILABLE', `pgbackrest ${command} failed (${signal ? `killed by ${signal}` : `exit ${code}`})`, {
          details: lines.slice(-6),
          hint: `its log: ${ctx.configFile.replace(/pgbackrest\.conf$/, 'log')}/${ctx.stanza}-${command}.log`,
        }),
      );
    });
  });
}

export async function repositoryInfo(ctx: PgbackrestContext, opts: { timeoutMs?: number } = {}): Promise<RepositoryInfo> {
  return parseRepositoryInfo(await runPgbackrest(ctx, 'info', ['--output=json'], opts), ctx.stanza);
}

/** `pgbackrest info --output=json`, read through its schema: one stanza's backups and archived WAL range. */
export function parseRepositoryInfo(text: string, stanzaName: string): RepositoryInfo {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = z.array(stanzaInfoSchema).safeParse(json);
  const stanza = parsed.success ? parsed.data.find((s) => s.name === stanzaName) : undefined;
  if (!stanza) throw new GardenError('STATE_CONFLICT', `pgbackrest info did not describe stanza ${stanzaName}`, { details: [text.slice(0, 400)] });
  const iso = (s: number) => new Date(s * 1000).toISOString();
  const archive = stanza.archive.at(-1);
  return {
    stanza: stanza.name,
    status: stanza.status.message,
    backups: stanza.backup.map((b) => ({
      label: b.label,
      type: b.type,
      prior: b.prior ?? null,
      startedAt: iso(b.timestamp.start),
      stoppedAt: iso(b.timestamp.stop),
      stopLsn: b.lsn?.stop ?? null,
      sizeBytes: b.info.size,
      repositoryBytes: b.info.repository.delta,
      error: b.error ?? false,
    })),
    archive: { min: stanza.archive[0]?.min ?? null, max: archive?.max ?? null },
  };
}

/** Creates the stanza (idempotent: an existing one that matches the cluster is accepted), then proves archiving works end to end. */
export async function ensureStanza(ctx: PgbackrestContext): Promise<void> {
  await runPgbackrest(ctx, 'stanza-create');
  await runPgbackrest(ctx, 'check');
}

/** Takes a base backup (from a standby where one is streaming) and returns its entry in the repository. */
export async function takeBackup(ctx: PgbackrestContext, type: BackupType): Promise<BackupInfo> {
  const before = new Set((await repositoryInfo(ctx)).backups.map((b) => b.label));
  await runPgbackrest(ctx, 'backup', [`--type=${type}`]).catch((e: unknown) => {
    if (e instanceof GardenError && e.details.some((d) => /unable to acquire lock/.test(d))) {
      throw new GardenError('STATE_CONFLICT', `another backup of stanza ${ctx.stanza} is running (the scheduler's, or another command's)`, {
        details: e.details,
        hint: 'wait for it to finish, then run this one again',
      });
    }
    throw e;
  });
  const made = (await repositoryInfo(ctx)).backups.find((b) => !before.has(b.label));
  if (!made) throw new GardenError('STATE_CONFLICT', 'pgbackrest backup succeeded but the repository lists no new backup');
  return made;
}

/** A recovery target as the user wrote it: `latest`, a time (ISO 8601 with an offset, or UTC) or an LSN. */
export type RecoveryTarget = { kind: 'latest' } | { kind: 'time'; time: Date } | { kind: 'lsn'; lsn: string };

export function parseTarget(text: string): RecoveryTarget {
  if (text === 'latest') return { kind: 'latest' };
  if (/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(text)) return { kind: 'lsn', lsn: text.toUpperCase() };
  // A time without an offset would be read in whatever zone the server runs in: insist on one.
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/.test(text)) {
    const time = new Date(text.replace(' ', 'T'));
    if (!Number.isNaN(time.getTime())) return { kind: 'time', time };
  }
  throw new GardenError('CONFIG_INVALID', `--to ${text} is not a recovery target`, {
    hint: 'use latest, a time with its offset (2026-11-30T09:15:00Z, 2026-11-30 10:15:00+01:00) or an LSN (0/3000060)',
  });
}

/** Compares two LSNs ("X/Y", hexadecimal). */
export function compareLsn(a: string, b: string): number {
  const n = (l: string) => {
    const [hi, lo] = l.split('/');
    return BigInt(`0x${hi}`) * 2n ** 32n + BigInt(`0x${lo}`);
  };
  const d = n(a) - n(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/**
 * The backup a restore to `target` starts from: the newest one that became consistent at or before it.
 * A target before the first backup's consistency point cannot be reached, and is refused with the earliest one that can.
 */
export function backupFor(info: RepositoryInfo, target: RecoveryTarget): BackupInfo {
  const usable = info.backups.filter((b) => !b.error);
  if (usable.length === 0)
    throw new GardenError('STATE_CONFLICT', `the repository ${info.stanza} holds no backup to restore from`, {
      hint: 'take one: gardenos local db backup --type full',
    });
  const first = usable[0]!;
  const fits = usable.filter((b) =>
    target.kind === 'time' ? new Date(b.stoppedAt) <= target.time : target.kind === 'lsn' ? b.stopLsn !== null && compareLsn(b.stopLsn, target.lsn) <= 0 : true,
  );
  const chosen = fits.at(-1);
  if (!chosen) {
    const what = target.kind === 'time' ? target.time.toISOString() : target.kind === 'lsn' ? target.lsn : 'latest';
    throw new GardenError(
      'STATE_CONFLICT',
      `cannot restore to ${what}: it is before the first backup's consistent point (${first.label}, ${first.stoppedAt}, LSN ${first.stopLsn ?? '?'})`,
      {
        hint: `the earliest point this repository can restore to is ${first.stoppedAt}`,
      },
    );
  }
  return chosen;
}

/** What `db restore --to` reports, local and platform alike. */
export interface PitrResult {
  target: string;
  /** The backup it started from. */
  from: string;
  leader: string;
  /** The incremental backup of the state before the restore, when a leader ran. */
  safetyBackup: string | null;
  /** The full backup taken of the restored cluster: its new timeline's first. */
  newBackup: string;
  /** Patroni's keys as they were (0600). */
  dcsBackup: string;
  durationMs: number;
}

export const describeTarget = (t: RecoveryTarget) => (t.kind === 'time' ? t.time.toISOString() : t.kind === 'lsn' ? t.lsn : 'latest');

/**
 * The backup a restore to `target` starts from, among all or only the one named `from`: a target in the future, an
 * unknown label and a target before the first backup are refused before anything changes. `list` is the command that lists them.
 */
export function chooseBackup(info: RepositoryInfo, target: RecoveryTarget, from: string | undefined, list: string): BackupInfo {
  if (target.kind === 'time' && target.time.getTime() > Date.now())
    throw new GardenError('CONFIG_INVALID', `--to ${target.time.toISOString()} is in the future`, { hint: 'to replay everything archived, use --to latest' });
  if (from && !info.backups.some((b) => b.label === from))
    throw new GardenError('STATE_CONFLICT', `the repository has no backup ${from}`, { hint: `list them: ${list}` });
  return backupFor(from ? { ...info, backups: info.backups.filter((b) => b.label === from) } : info, target);
}

/** PostgreSQL's recovery settings for a target, as Patroni's bootstrap `recovery_conf` takes them. */
export function recoverySettings(target: RecoveryTarget, restoreCommand: string): Record<string, string> {
  return {
    restore_command: restoreCommand,
    recovery_target_timeline: 'latest',
    ...(target.kind === 'time' ? { recovery_target_time: target.time.toISOString(), recovery_target_action: 'promote' } : {}),
    ...(target.kind === 'lsn' ? { recovery_target_lsn: target.lsn, recovery_target_action: 'promote' } : {}),
  };
}

/**
 * pgBackRest's own check of the repository: every backup file and archived WAL segment read back and
 * its checksum compared. pgBackRest 2.45 exits 0 whatever it finds and names bad files only in its
 * log lines, so those are read (at info level, for this run only).
 */
export async function repositoryProblems(ctx: PgbackrestContext): Promise<{ problem: string; file: string }[]> {
  const out = await runPgbackrest(ctx, 'verify', ['--output=text', '--log-level-console=info', '--log-level-stderr=off']);
  const problems = [...out.matchAll(/INFO: (invalid checksum|invalid size|missing|invalid result|[a-z ]*invalid[a-z ]*) '([^']+)'/g)].map((m) => ({
    problem: m[1]!,
    file: m[2]!,
  }));
  if (problems.length === 0 && /^status: error/m.test(out)) {
    return [
      {
        problem: 'pgbackrest verify reported status error',
        file: out
          .split('\n')
          .filter((l) => /invalid|missing/.test(l))
          .join('; '),
      },
    ];
  }
  return problems;
}

/**
 * Whether restoring `b` reads `file` (a path in pgBackRest's verify output): archived WAL, and the files of
 * `b` and of the backups it builds on — its full backup and the diff/incr ones of that chain up to it
 * (labels are F, F_D and F_I stamped with their time, so they sort in order).
 */
function needs(b: BackupInfo, file: string): boolean {
  const label = file.split('/')[0]!;
  if (!/^\d{8}-\d{6}F/.test(label)) return true;
  const full = b.label.split('_')[0]!;
  return label === full || (label.startsWith(`${full}_`) && label <= b.label);
}

export interface VerifyResult {
  label: string;
  /** The point the throwaway instance was recovered to: the source standby's replay position when counting. */
  lsn: string;
  databases: { name: string; tables: number; rows: number }[];
  amcheck: string;
  verifiedAt: string;
  durationMs: number;
}

/** A libpq-style connection to a member or the throwaway instance, through its Unix socket. */
export interface SocketTarget {
  socketDir: string;
  port: number;
  user: string;
  password: string;
}

async function withClient<T>(t: SocketTarget, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: t.socketDir, port: t.port, user: t.user, password: t.password, database, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The source side of a restore test: on a standby, replay is paused, its position read and every table
 * counted — a standby paused at LSN L shows exactly the transactions committed up to L, so a restore to
 * L must show the same counts. Replay resumes whatever happens. Returns L and the counts.
 */
export async function countAtPausedReplay(standby: SocketTarget): Promise<{ lsn: string; counts: Record<string, Record<string, number>> }> {
  return withClient(standby, 'postgres', async (admin) => {
    if (!(await admin.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r)
      throw new GardenError('STATE_CONFLICT', 'the member chosen to count on is not a standby');
    await admin.query('SELECT pg_wal_replay_pause()');
    try {
      // Pausing is requested, then takes effect between records: wait until it has.
      for (let i = 0; ; i++) {
        const state = (await admin.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s')).rows[0]!.s;
        if (state === 'paused') break;
        if (i > 200) throw new GardenError('TIMEOUT', 'the standby did not pause its replay within 10 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      const lsn = (await admin.query<{ l: string }>('SELECT pg_last_wal_replay_lsn()::text AS l')).rows[0]!.l;
      const names = (await admin.query<{ d: string }>('SELECT datname AS d FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1')).rows.map(
        (r) => r.d,
      );
      const counts: Record<string, Record<string, number>> = {};
      for (const name of names) counts[name] = await withClient(standby, name, countRows);
      return { lsn, counts };
    } finally {
      await admin.query('SELECT pg_wal_replay_resume()').catch(() => {});
    }
  });
}

/** Runs a PostgreSQL binary as the owner; rejects with its output. */
function pgTool(ctx: Pick<PgbackrestContext, 'binDir' | 'owner'>, name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ctx.binDir, name), args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(ctx.owner ? { uid: ctx.owner.uid, gid: ctx.owner.gid } : {}),
      timeout: 30 * 60_000,
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    child.on('error', (e) => reject(new GardenError('MISSING_PACKAGE', `cannot run ${name}: ${describe(e)}`)));
    child.on('close', (code) => {
      const text = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(text);
      else reject(new GardenError('STATE_CONFLICT', `${name} failed (exit ${code})`, { details: text.trim().split('\n').slice(-8) }));
    });
  });
}

export interface VerifyInput {
  backup: BackupInfo;
  /** The standby whose paused replay gives the point and the counts to compare with. */
  standby: SocketTarget;
  /** Makes WAL up to the counted point reach the repository (the primary switches to a new segment). */
  switchWal: () => Promise<void>;
  /** A directory for the throwaway instance (created, then removed). */
  workDir: string;
  /** A port for the throwaway instance; it listens on a Unix socket only. */
  port: number;
  report: Reporter;
}

/**
 * A backup counts once it has been restored: pgBackRest's own verify over the repository (checksums of
 * every file; names a damaged one), then a restore of `backup` plus the archived WAL up to the point a
 * standby was counted at, into a throwaway instance on its own socket and port; PostgreSQL's own checks
 * (pg_amcheck, heap and every B-tree index) on every database; and every table's row count equal to the
 * standby's at that point. The instance and its files are removed afterwards, pass or fail.
 */
export async function verifyBackup(ctx: PgbackrestContext, input: VerifyInput): Promise<VerifyResult> {
  const started = Date.now();
  const { report } = input;
  report({ kind: 'step', step: 'repository', status: 'start' });
  const damaged = await repositoryProblems(ctx);
  const ours = damaged.filter((d) => needs(input.backup, d.file));
  for (const d of damaged.filter((x) => !ours.includes(x)))
    report({ kind: 'warn', message: `another backup in the repository is damaged: ${d.problem} ${d.file}` });
  if (ours.length) {
    throw new GardenError(
      'STATE_CONFLICT',
      `backup ${input.backup.label} is damaged: pgbackrest verify found ${ours.length} bad file${ours.length === 1 ? '' : 's'} in the repository ${ctx.repoPath}; nothing was restored`,
      {
        details: ours.map((d) => `${d.problem}: ${d.file}`),
        hint: 'take a new full backup (gardenos local db backup --type full), and find out what damaged the repository',
      },
    );
  }
  report({ kind: 'step', step: 'repository', status: 'done', detail: `checksums of ${input.backup.label} and its WAL match` });

  report({ kind: 'step', step: 'source', status: 'start' });
  const source = await countAtPausedReplay(input.standby);
  await input.switchWal();
  report({ kind: 'step', step: 'source', status: 'done', detail: `counted at ${source.lsn} on a paused standby` });

  report({ kind: 'step', step: 'restore', status: 'start', detail: `${input.backup.label} + WAL to ${source.lsn}` });
  const instance = await restoreInstance(ctx, {
    label: input.backup.label,
    targetArgs: ['--type=lsn', `--target=${source.lsn}`, '--target-exclusive', '--target-action=promote'],
    what: source.lsn,
    workDir: input.workDir,
    port: input.port,
    login: input.standby,
  });
  report({ kind: 'step', step: 'restore', status: 'done', detail: 'recovered and promoted' });
  const { socketDir } = instance;
  try {
    const target: SocketTarget = { ...input.standby, socketDir, port: input.port };

    report({ kind: 'step', step: 'amcheck', status: 'start' });
    const amcheck = await pgTool(
      ctx,
      'pg_amcheck',
      ['--all', '--install-missing', '--heapallindexed', '--host', socketDir, '--port', String(input.port), '--username', input.standby.user],
      {
        PGPASSWORD: input.standby.password,
      },
    );
    report({ kind: 'step', step: 'amcheck', status: 'done', detail: amcheck.trim() || 'no corruption found' });

    report({ kind: 'step', step: 'compare', status: 'start' });
    const wrong: string[] = [];
    const databases: VerifyResult['databases'] = [];
    for (const [name, expected] of Object.entries(source.counts)) {
      const actual = await withClient(target, name, countRows).catch((e: unknown) => {
        wrong.push(`${name}: ${describe(e)}`);
        return undefined;
      });
      if (!actual) continue;
      for (const [table, n] of Object.entries(expected))
        if (actual[table] !== n) wrong.push(`${name}.${table}: restored ${actual[table] ?? 'missing'} rows, the source had ${n} at ${source.lsn}`);
      databases.push({ name, tables: Object.keys(expected).length, rows: Object.values(expected).reduce((a, b) => a + b, 0) });
    }
    if (wrong.length)
      throw new GardenError('STATE_CONFLICT', `the restore of ${input.backup.label} does not match the source at ${source.lsn}`, {
        details: wrong.slice(0, 20),
      });
    report({ kind: 'step', step: 'compare', status: 'done', detail: `${databases.length} databases, row counts equal` });
    return {
      label: input.backup.label,
      lsn: source.lsn,
      databases,
      amcheck: amcheck.trim() || 'no corruption found',
      verifiedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
    };
  } finally {
    await instance.remove();
  }
}

/** Stops a PostgreSQL instance in `dataDir` (immediate: it holds nothing to keep); resolves whether one ran. */
export async function stopInstance(ctx: Pick<PgbackrestContext, 'binDir' | 'owner'>, dataDir: string): Promise<boolean> {
  return pgTool(ctx, 'pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).then(
    () => true,
    () => false,
  );
}

export interface RestoredInstance {
  workDir: string;
  dataDir: string;
  /** It listens on a Unix socket in this directory only (no TCP). */
  socketDir: string;
  port: number;
  logFile: string;
  /** Stops it (immediate) and removes its files. */
  remove(): Promise<void>;
}

/** pgBackRest's restore options for a recovery target: up to it (inclusive), then promoted, following the latest timeline. */
export function targetOptions(target: RecoveryTarget): string[] {
  if (target.kind === 'latest') return ['--type=default', '--target-timeline=latest'];
  // PostgreSQL reads recovery_target_time before it has loaded time zone abbreviations: "Z" is refused
  // there ("invalid value"), a numeric offset is not.
  const [type, value] = target.kind === 'time' ? ['time', target.time.toISOString().replace('T', ' ').replace('Z', '+00')] : ['lsn', target.lsn];
  return [`--type=${type}`, `--target=${value}`, '--target-action=promote', '--target-timeline=latest'];
}

/**
 * A backup plus archived WAL up to a target, restored into a standalone instance in `workDir`, on its own
 * Unix socket and port (never TCP, never archiving into the repository), started and waited for until its
 * recovery has ended with a promotion. On any failure it is stopped and removed, and the error carries the
 * end of its log.
 */
export async function restoreInstance(
  ctx: PgbackrestContext,
  o: { label: string; targetArgs: string[]; what: string; workDir: string; port: number; login: Omit<SocketTarget, 'socketDir' | 'port'> },
): Promise<RestoredInstance> {
  const dataDir = join(o.workDir, 'data');
  const socketDir = join(o.workDir, 'run');
  const logFile = join(o.workDir, 'postgres.log');
  await rm(o.workDir, { recursive: true, force: true });
  await ensureDir(o.workDir, 0o700, ctx.owner);
  await ensureDir(socketDir, 0o700, ctx.owner);
  const pgCtl = (...args: string[]) => pgTool(ctx, 'pg_ctl', ['-D', dataDir, ...args]);
  let started = false;
  const remove = async () => {
    if (started) await pgCtl('-m', 'immediate', '-w', 'stop').catch(() => {});
    await rm(o.workDir, { recursive: true, force: true });
  };
  try {
    // archive-mode=off: the instance never pushes WAL into the cluster's repository.
    await runPgbackrest(ctx, 'restore', [`--pg1-path=${dataDir}`, `--set=${o.label}`, ...o.targetArgs, '--archive-mode=off']);
    // The member's postgresql.conf came along: its address, TLS files and pg_hba path are overridden.
    const opts = [
      `-c port=${o.port}`,
      "-c listen_addresses=''",
      `-c unix_socket_directories=${socketDir}`,
      '-c ssl=off',
      '-c archive_mode=off',
      `-c hba_file=${join(dataDir, 'pg_hba.conf')}`,
      `-c ident_file=${join(dataDir, 'pg_ident.conf')}`,
      '-c shared_buffers=32MB',
      '-c synchronous_standby_names=',
    ].join(' ');
    await pgCtl('-o', opts, '-l', logFile, '-w', '-t', '600', 'start').catch(async (e: unknown) => {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new GardenError('STATE_CONFLICT', `the restored copy of ${o.label} did not start`, { details: log.trim().split('\n').slice(-8), cause: e });
    });
    started = true;
    const target: SocketTarget = { ...o.login, socketDir, port: o.port };
    // Recovery to the target ends with a promotion; wait for it.
    for (let i = 0; ; i++) {
      const inRecovery = await withClient(target, 'postgres', async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r).catch(
        () => true,
      );
      if (!inRecovery) break;
      // A recovery that cannot reach its target ends the instance (FATAL): say so at once, with its log.
      if (
        !(await pgCtl('status').then(
          () => true,
          () => false,
        ))
      ) {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        throw new GardenError('STATE_CONFLICT', `the restored copy of ${o.label} stopped during recovery to ${o.what}`, {
          details: log.trim().split('\n').slice(-8),
        });
      }
      if (i > 1200)
        throw new GardenError('TIMEOUT', `the restored instance did not finish recovery to ${o.what} within 10 minutes`, { hint: `its log: ${logFile}` });
      await new Promise((r) => setTimeout(r, 500));
    }
    return { workDir: o.workDir, dataDir, socketDir, port: o.port, logFile, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** The primary's archiver (pg_stat_archiver): failing when its last failure is newer than its last success. */
export interface ArchiverState {
  failing: boolean;
  lastArchivedWal: string | null;
  lastFailedWal: string | null;
  lastFailedAt: string | null;
  /** While failing: pgBackRest's last error, as PostgreSQL logged it ("[047]: unable to … No space left on device"). */
  reason?: string;
}

/** pg_stat_archiver's row, asked of any member: whether it is a standby, its last success and last failure. */
export const ARCHIVER_SQL =
  'SELECT pg_is_in_recovery() AS standby, last_archived_wal AS archived, last_archived_time AS "archivedAt", last_failed_wal AS failed, last_failed_time AS "failedAt" FROM pg_stat_archiver';

export function archiverState(
  row: { archived: string | null; archivedAt: Date | null; failed: string | null; failedAt: Date | null },
  reason: string | undefined,
): ArchiverState {
  const failing = row.failedAt !== null && (row.archivedAt === null || row.failedAt > row.archivedAt);
  return {
    failing,
    lastArchivedWal: row.archived,
    lastFailedWal: row.failed,
    lastFailedAt: row.failedAt?.toISOString() ?? null,
    ...(failing && reason ? { reason } : {}),
  };
}

/**
 * Why the primary's archive_command failed last, from its log's lines: pgBackRest's error (its stderr, which PostgreSQL
 * logs just before "archive command failed"), without its hints. An older error further up is not taken for it.
 */
export function archiveErrorIn(lines: readonly string[]): string | undefined {
  const failed = lines.findLastIndex((l) => l.includes('archive command failed'));
  const error = lines.slice(0, Math.max(failed, 0)).findLastIndex((l) => /^ERROR: \[\d+\]/.test(l.trim()));
  if (failed < 0 || error < 0 || failed - error > 40) return undefined;
  const text = lines
    .slice(error, failed)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('HINT:'))
    .join(' ');
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

/** `status`'s problem for a failing archiver, local and platform alike; `where` says which primary, `look` where to read more. */
export function archivingProblem(a: ArchiverState, where: string, look: string): string {
  return `WAL archiving is failing${where} (segment ${a.lastFailedWal}, last failure ${a.lastFailedAt})${a.reason ? `: ${a.reason}` : ''}; the primary keeps the WAL until it succeeds, so its disk fills; ${look}`;
}
