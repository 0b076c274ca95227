// Backups on the platform (backups.enabled), driven through the Kubernetes API: a backup now is a Job made
// from the full backup CronJob's pod template with the script of the type asked for (as `kubectl create job
// --from=cronjob/…` does, so it runs exactly what the schedule runs); the repository's inventory and the last
// restore test are read by exec in the repository's pod; the stanza is made and archiving proven there too.
// Nothing here reaches a member or the repository's volume except through those pods.
import type { KubeConfig, V1Job, V1Pod } from '@kubernetes/client-node';
import { execInPod } from '../clients/kubernetes.ts';
import type { Config } from '../config/schema.ts';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import {
  ARCHIVER_SQL,
  archiveErrorIn,
  archiverState,
  parseRepositoryInfo,
  type ArchiverState,
  type BackupInfo,
  type BackupType,
  type RepositoryInfo,
} from '../ops/pgbackrest.ts';
import { USERS } from '../render/files.ts';
import { POSTGRES_SOCKET_DIR } from '../render/kube/names.ts';
import { BACKUP_REPO_CONTAINER, BACKUP_TYPE_LABEL, backupCronJob, backupRepoPod, backupScript, VERIFY_RESULT } from '../render/kube/backups.ts';
import { stanzaOf } from '../render/pgbackrest.ts';
import { waitFor } from '../util/wait.ts';
import { z } from 'zod';

/** What the scheduled restore test after a full backup wrote on the repository's volume. */
const verifySchema = z.looseObject({
  ok: z.boolean(),
  label: z.string(),
  at: z.string(),
  seconds: z.number().optional(),
  databases: z.number().optional(),
  error: z.string().optional(),
});
export type PlatformVerify = z.infer<typeof verifySchema>;

export interface PlatformBackupList extends RepositoryInfo {
  /** The last restore test, if one ran. */
  lastVerify: PlatformVerify | null;
}

const repo = (config: Config) => ({ namespace: config.namespaces.database, pod: backupRepoPod(), container: BACKUP_REPO_CONTAINER });

function notEnabled(config: Config): GardenError | undefined {
  return config.backups.enabled
    ? undefined
    : new GardenError('CONFIG_INVALID', 'backups are not enabled on this platform', { hint: 'backups.enabled: true in gardenos.yaml, then `gardenos up`' });
}

/** pgBackRest in the repository's pod; its failure says which command and what pgBackRest said. */
async function inRepo(kc: KubeConfig, config: Config, args: string[], timeoutMs: number): Promise<string> {
  const command = ['pgbackrest', `--stanza=${stanzaOf(config)}`, ...args];
  try {
    return (await execInPod(kc, repo(config), command, timeoutMs)).stdout;
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `pgbackrest ${args.at(-1)} in ${config.namespaces.database}/${backupRepoPod()} failed`, {
      details: describe(e).split('\n').slice(-8),
      hint: `\`gardenos status\` shows the repository pod; \`kubectl -n ${config.namespaces.database} logs ${backupRepoPod()}\` its server's log`,
      cause: e,
    });
  }
}

/** The repository's backups and archived WAL (pgbackrest info) and the last restore test, read in the repository's pod. */
export async function platformBackupList(kc: KubeConfig, config: Config): Promise<PlatformBackupList> {
  const off = notEnabled(config);
  if (off) throw off;
  // Nothing but the JSON on stdout: pgBackRest's console log goes there too.
  const info = parseRepositoryInfo(await inRepo(kc, config, ['--output=json', '--log-level-console=off', 'info'], 60_000), stanzaOf(config));
  const verifyText = await execInPod(kc, repo(config), ['sh', '-c', `cat ${VERIFY_RESULT} 2>/dev/null || true`], 30_000).then((r) => r.stdout.trim());
  const verify = verifyText ? verifySchema.safeParse(JSON.parse(verifyText)) : undefined;
  return { ...info, lastVerify: verify?.success ? verify.data : null };
}

/**
 * The leader's archiver (pg_stat_archiver), asked in its pod — psql in the pgBackRest sidecar, on PostgreSQL's socket,
 * with the superuser's password the sidecar already has — and while it fails, pgBackRest's error as PostgreSQL logged
 * it to the postgres container's log (its last 400 lines).
 */
export async function platformArchiver(kc: KubeConfig, config: Config, leaderPod: string, timeoutMs = 30_000): Promise<ArchiverState> {
  const namespace = config.namespaces.database;
  const sql = `SELECT row_to_json(a) FROM (${ARCHIVER_SQL}) a`;
  const { stdout } = await execInPod(
    kc,
    { namespace, pod: leaderPod, container: BACKUP_REPO_CONTAINER },
    ['psql', '-X', '-q', '-A', '-t', '-h', POSTGRES_SOCKET_DIR, '-U', USERS.superuser, '-d', 'postgres', '-c', sql],
    timeoutMs,
  );
  const raw = JSON.parse(stdout.trim()) as { archived: string | null; archivedAt: string | null; failed: string | null; failedAt: string | null };
  const row = { ...raw, archivedAt: raw.archivedAt ? new Date(raw.archivedAt) : null, failedAt: raw.failedAt ? new Date(raw.failedAt) : null };
  const state = archiverState(row, undefined);
  if (!state.failing) return state;
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const log = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedPodLog({ name: leaderPod, namespace, container: 'postgres', tailLines: 400 })
    .then(String, () => '');
  return archiverState(row, archiveErrorIn(log.split('\n')));
}

/**
 * Makes the stanza if the repository is new (idempotent) and proves archiving end to end (`pgbackrest check`: a WAL
 * switch on the primary, seen in the repository within archiveTimeoutSeconds).
 */
export async function platformBackupCheck(kc: KubeConfig, config: Config, report: Reporter): Promise<void> {
  const off = notEnabled(config);
  if (off) throw off;
  report({ kind: 'step', step: 'backup-check', status: 'start', detail: 'stanza and WAL archiving' });
  // The repository pod reaches the members only once they and it are ready: retried within a deadline.
  await waitFor('the stanza to be made in the repository', () => inRepo(kc, config, ['stanza-create'], 120_000), {
    timeoutMs: 300_000,
    intervalMs: 3_000,
  });
  await inRepo(kc, config, ['check'], (config.backups.archiveTimeoutSeconds + 60) * 1000);
  report({ kind: 'step', step: 'backup-check', status: 'done', detail: 'a WAL segment reached the repository' });
}

export interface PlatformBackupResult {
  job: string;
  type: BackupType;
  durationMs: number;
  backup: BackupInfo;
  /** After a full backup with verifyAfterFull: the restore test it ran. */
  verify: PlatformVerify | null;
}

/** A name's time part (20261201-054707): Jobs and helper pods made now. */
export const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

/** The last lines a Job's pod logged: what a failure message shows. */
async function jobLog(kc: KubeConfig, namespace: string, job: string): Promise<string[]> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` }).catch(() => ({ items: [] as V1Pod[] }));
  const pod = pods.items.at(-1);
  if (!pod) return ['(no pod was made for the Job)'];
  const log = await core
    .readNamespacedPodLog({ namespace, name: pod.metadata!.name!, container: BACKUP_REPO_CONTAINER, tailLines: 12 })
    .catch((e: unknown) => `(no log: ${describe(e)})`);
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
  return [...(waiting ? [`${pod.metadata!.name}: ${waiting.reason}: ${waiting.message ?? ''}`] : []), ...String(log).trim().split('\n')];
}

/**
 * Takes a backup now: a Job from the full backup CronJob's pod template running the script of `type` (a full one
 * followed by the restore test when verifyAfterFull is on), waited for within `timeoutMs`; then the repository's
 * newest backup. A failed Job is reported with its pod's last log lines; the Job is kept for `kubectl logs`.
 */
export async function platformBackup(
  kc: KubeConfig,
  config: Config,
  type: BackupType,
  o: { report: Reporter; timeoutMs: number },
): Promise<PlatformBackupResult> {
  const off = notEnabled(config);
  if (off) throw off;
  const { BatchV1Api } = await import('@kubernetes/client-node');
  const batch = kc.makeApiClient(BatchV1Api);
  const namespace = config.namespaces.database;
  const cronName = backupCronJob('full');
  const cron = await batch.readNamespacedCronJob({ namespace, name: cronName }).catch((e: unknown) => {
    throw new GardenError('CONFIG_NOT_FOUND', `no CronJob ${namespace}/${cronName}: the backup schedule is not applied`, {
      hint: '`gardenos up` applies it (backups.enabled)',
      cause: e,
    });
  });
  const template = cron.spec!.jobTemplate;
  const container = template.spec!.template.spec!.containers[0]!;
  container.command = ['sh', '-c', backupScript(config, type)];
  const labels = { ...(template.metadata?.labels ?? {}), [BACKUP_TYPE_LABEL]: type };
  const name = `${cronName.replace(/-full$/, '')}-${type}-${stamp()}`.toLowerCase();
  const job: V1Job = {
    metadata: {
      name,
      namespace,
      labels,
      // As `kubectl create job --from=cronjob/…` marks it; owned by the CronJob, so its history limits apply.
      annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cronName, uid: cron.metadata!.uid!, controller: false }],
    },
    spec: { ...template.spec!, template: { ...template.spec!.template, metadata: { ...template.spec!.template.metadata, labels } } },
  };
  const started = Date.now();
  o.report({ kind: 'step', step: 'backup', status: 'start', detail: `${type} (pgBackRest, from a standby): Job ${namespace}/${name}` });
  await batch.createNamespacedJob({ namespace, body: job });
  const done = await waitFor(
    `Job ${namespace}/${name} to finish`,
    async () => {
      const j = await batch.readNamespacedJob({ namespace, name });
      if (j.status?.succeeded) return 'succeeded' as const;
      if (j.status?.failed) return 'failed' as const;
      throw new Error(`active ${j.status?.active ?? 0}`);
    },
    { timeoutMs: o.timeoutMs, intervalMs: 1_000 },
  ).catch(async (e: unknown) => {
    throw new GardenError('BACKEND_UNAVAILABLE', `the ${type} backup did not finish within ${Math.round(o.timeoutMs / 1000)} s`, {
      details: await jobLog(kc, namespace, name),
      hint: `it may still be running: kubectl -n ${namespace} logs job/${name}`,
      cause: e,
    });
  });
  if (done === 'failed') {
    o.report({ kind: 'step', step: 'backup', status: 'fail', detail: name });
    throw new GardenError('BACKEND_UNAVAILABLE', `the ${type} backup failed (Job ${namespace}/${name})`, {
      details: await jobLog(kc, namespace, name),
      hint: `the whole log: kubectl -n ${namespace} logs job/${name}; \`gardenos doctor\` checks the members and the repository`,
    });
  }
  const list = await platformBackupList(kc, config);
  const backup = list.backups.at(-1);
  if (!backup) throw new GardenError('STATE_CONFLICT', `Job ${name} succeeded but the repository lists no backup`);
  o.report({ kind: 'step', step: 'backup', status: 'done', detail: backup.label });
  const verify = type === 'full' && config.backups.schedule.verifyAfterFull && list.lastVerify?.label === backup.label ? list.lastVerify : null;
  return { job: name, type, durationMs: Date.now() - started, backup, verify };
}
