// The local profile's backup scheduler: a small supervised process (like the router) that takes the
// backups `backups.schedule` asks for — full, diff and incr by their cron expressions — and a restore test
// after each full one, one at a time. Each run is a JSON line in its log and the last one per kind is kept
// in <state>/pgbackrest/schedule-state.json, which `status` reads. Hosts get systemd timers and Kubernetes a
// CronJob from the same schedule; this is the runner where neither exists.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe } from '../errors.ts';
import { silent } from '../log/events.ts';
import { writeFileAtomic } from '../util/files.ts';
import { localBackup, localVerify, nextRuns, readScheduleState, writeBackupRecords, type ScheduledRun } from './backups.ts';
import type { LocalCluster } from './cluster.ts';

/** Runs until `signal` aborts: sleeps to the next due backup, takes it, and after a full one tests it. */
export async function runSchedule(c: LocalCluster, log: (line: Record<string, unknown>) => void, signal: AbortSignal): Promise<void> {
  const schedule = c.config.backups.schedule;
  log({ msg: 'scheduler started', schedule });
  // The newest-backup record and the metrics file (monitoring on): now, after every run, and every minute —
  // the metrics' timestamp is the scheduler's heartbeat.
  const metrics = () => writeBackupRecords(c).catch((e: unknown) => log({ msg: 'could not write the backup records', error: describe(e) }));
  await metrics();
  const heartbeat = setInterval(metrics, 60_000);
  signal.addEventListener('abort', () => clearInterval(heartbeat), { once: true });
  try {
    await loop(c, log, signal, metrics);
  } finally {
    clearInterval(heartbeat);
  }
}

async function loop(c: LocalCluster, log: (line: Record<string, unknown>) => void, signal: AbortSignal, metrics: () => Promise<void>): Promise<void> {
  const schedule = c.config.backups.schedule;
  while (!signal.aborted) {
    const [next] = nextRuns(schedule, new Date());
    if (!next) return;
    log({ msg: 'next', kind: next.kind, at: next.at.toISOString() });
    // In steps of at most an hour: a timer longer than 2^31 ms (24.8 days) would fire at once, and a
    // clock that jumps (a suspended laptop) is noticed within the hour.
    while (!signal.aborted && Date.now() < next.at.getTime()) {
      await sleep(Math.min(next.at.getTime() - Date.now(), 3_600_000), undefined, { signal }).catch(() => {});
    }
    if (signal.aborted) return;
    // Everything due at the same instant is one run, of the strongest kind.
    const due = nextRuns(schedule, new Date(next.at.getTime() - 1)).filter((r) => r.at.getTime() === next.at.getTime());
    const kind = due[0]?.kind ?? next.kind;
    await record(c, log, kind, async () => (await localBackup(c, kind)).label);
    if (kind === 'full' && schedule.verifyAfterFull && !signal.aborted)
      await record(c, log, 'verify', async () => (await localVerify(c, undefined, silent)).label);
    await metrics();
  }
}

async function record(c: LocalCluster, log: (line: Record<string, unknown>) => void, kind: ScheduledRun['kind'], run: () => Promise<string>): Promise<void> {
  const started = Date.now();
  let result: ScheduledRun;
  try {
    const label = await run();
    result = { kind, at: new Date(started).toISOString(), ok: true, label, durationMs: Date.now() - started };
  } catch (e) {
    result = { kind, at: new Date(started).toISOString(), ok: false, error: describe(e), durationMs: Date.now() - started };
  }
  log({ msg: result.ok ? 'done' : 'failed', ...result });
  // A damaged record is replaced by this run's.
  const state = await readScheduleState(c).catch(() => ({}));
  await writeFileAtomic(c.layout.backups.scheduleStateFile, `${JSON.stringify({ ...state, [kind]: result }, null, 2)}\n`, 0o644);
}
