// `gardenos db restore --to` on the platform: the PostgreSQL StatefulSet rebuilt at a point in time from the
// repository pod, driven through the Kubernetes API and etcd — the same steps as the local profile's restore:
// a safety backup while a leader runs; the backup CronJobs suspended and the StatefulSet scaled to nothing;
// every member's data directory moved aside on its own volume (a pod per volume, no member host reached);
// Patroni's keys backed up and cleaned; member 0 alone bootstrapped by Patroni from the chosen backup plus
// archived WAL up to the target (patroni.yml's bootstrap method, in its Secret for as long as that takes);
// the others then copied from it; the moved-aside directories removed; the new timeline's first full backup;
// the CronJobs as they were. A failure on the way says where everything is and how to put it back.
// `--beside` instead restores the point into a pod of its own on the repository's side and leaves it running.
import { join } from 'node:path';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { EtcdClient } from '../clients/etcd.ts';
import { execInPod } from '../clients/kubernetes.ts';
import { PatroniClient, readyLeader, type PatroniClusterView } from '../clients/patroni.ts';
import type { Config } from '../config/schema.ts';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { cleanPatroniKeys } from '../ops/dcs.ts';
import { chooseBackup, describeTarget, recoverySettings, targetOptions, type BackupInfo, type PitrResult, type RecoveryTarget } from '../ops/pgbackrest.ts';
import { BACKUP_REPO_CONTAINER, BESIDE_POD, BESIDE_SOCKET, besidePod, PGBACKREST_CONFIG, PGBACKREST_POD } from '../render/kube/backups.ts';
import { USERS } from '../render/files.ts';
import { labelsFor } from '../render/kube/manifest.ts';
import { PGDATA, PGDATA_MOUNT, POSTGRES_UID, postgresPodSelector, SECRET_NAMES } from '../render/kube/names.ts';
import { platformPatroniConfig } from '../render/kube/secrets.ts';
import { pgbackrest, restoreCommand } from '../render/pgbackrest.ts';
import { etcdClientUrls, hostPort, productionTopology } from '../render/topology.ts';
import { patroniKeys } from '../router/dcs.ts';
import { waitFor } from '../util/wait.ts';
import { platformBackup, platformBackupCheck, platformBackupList, stamp } from './backups.ts';
import type { PlatformSecrets } from './secrets.ts';

export interface PlatformRestoreInput {
  kc: KubeConfig;
  config: Config;
  secretsDir: string;
  secrets: PlatformSecrets;
}

/** The backup a restore to `target` would start from (the one named by `from`, if given); refuses what the repository cannot reach. */
export async function platformCheckTarget(kc: KubeConfig, config: Config, target: RecoveryTarget, from?: string): Promise<BackupInfo> {
  return chooseBackup(await platformBackupList(kc, config), target, from, 'gardenos db backup list');
}

const statefulSet = (config: Config) => ({ namespace: config.namespaces.database, name: config.postgres.scope });

/** Patroni's view of the cluster from whichever postgres node answers first; undefined when none does. */
async function clusterView(config: Config, caFile: string): Promise<PatroniClusterView | undefined> {
  const views = await Promise.all(
    productionTopology(config).postgres.map((m) =>
      new PatroniClient(`https://${hostPort(m.address, config.postgres.patroniPort)}`, { caFile, timeoutMs: 2000 }).cluster().catch(() => undefined),
    ),
  );
  return views.find((v) => v !== undefined);
}

/**
 * Runs `script` against each member's volume (PVC pgdata-<scope>-N) in a pod of its own — as the postgres user of
 * the image, no API token, no network of the node — and waits for every one to succeed. The local-path volume's
 * node affinity puts each pod on the node that holds the data. A failure names the member and shows the pod's log.
 */
async function onEveryVolume(kc: KubeConfig, config: Config, what: string, script: string, timeoutMs: number): Promise<void> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = config.namespaces.database;
  const scope = config.postgres.scope;
  const uid = POSTGRES_UID[config.postgres.flavor];
  const claims = new Set((await core.listNamespacedPersistentVolumeClaim({ namespace })).items.map((c) => c.metadata!.name!));
  const members = productionTopology(config)
    .postgres.map((_, i) => `${scope}-${i}`)
    .filter((m) => claims.has(`pgdata-${m}`));
  const run = stamp().toLowerCase();
  const pods = members.map(
    (member): V1Pod => ({
      metadata: { name: `${member}-${what}-${run}`, namespace, labels: { ...labelsFor('postgres-restore'), 'gardenos.dev/member': member } },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        ...PGBACKREST_POD,
        securityContext: { runAsUser: uid, runAsGroup: uid, runAsNonRoot: true },
        containers: [
          {
            name: 'volume',
            image: config.postgres.image,
            command: ['sh', '-euc', script],
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
            volumeMounts: [{ name: 'pgdata', mountPath: PGDATA_MOUNT }],
          },
        ],
        volumes: [{ name: 'pgdata', persistentVolumeClaim: { claimName: `pgdata-${member}` } }],
      },
    }),
  );
  try {
    for (const body of pods) await core.createNamespacedPod({ namespace, body });
    await Promise.all(
      pods.map(async (p) => {
        const name = p.metadata!.name!;
        const phase = await waitFor(
          `pod ${namespace}/${name} to finish`,
          async () => {
            const s = (await core.readNamespacedPod({ namespace, name })).status?.phase;
            return s === 'Succeeded' || s === 'Failed' ? s : undefined;
          },
          { timeoutMs, intervalMs: 500 },
        );
        if (phase === 'Failed') {
          const log = String(await core.readNamespacedPodLog({ namespace, name, tailLines: 8 }).catch((e: unknown) => `(no log: ${describe(e)})`));
          throw new GardenError('BACKEND_UNAVAILABLE', `${what} on the volume of ${p.metadata!.labels!['gardenos.dev/member']} failed`, {
            details: log.trim().split('\n'),
          });
        }
      }),
    );
  } finally {
    await Promise.all(pods.map((p) => core.deleteNamespacedPod({ namespace, name: p.metadata!.name! }).catch(() => undefined)));
  }
}

/**
 * Rebuilds the platform's PostgreSQL cluster at `target`. Confirmation is the caller's; the target is checked first
 * (nothing changes when the repository cannot reach it).
 */
export async function platformPointInTimeRestore(
  input: PlatformRestoreInput,
  target: RecoveryTarget,
  opts: { from?: string; report: Reporter; timeoutMs: number },
): Promise<PitrResult> {
  const { kc, config, secretsDir, secrets } = input;
  const { report, timeoutMs } = opts;
  const started = Date.now();
  const pki = join(secretsDir, 'pki');
  const caFile = join(pki, 'ca.crt');
  const scope = config.postgres.scope;
  const namespace = config.namespaces.database;
  const members = productionTopology(config).postgres.length;
  await platformCheckTarget(kc, config, target, opts.from);

  const { AppsV1Api, BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  // The safety backup, while a leader runs: what is there now stays restorable.
  let safetyBackup: string | null = null;
  const before = await clusterView(config, caFile);
  if (before?.members.some((m) => m.role === 'leader' && m.state === 'running')) {
    report({ kind: 'step', step: 'safety backup', status: 'start' });
    safetyBackup = (await platformBackup(kc, config, 'incr', { report, timeoutMs })).backup.label;
    report({ kind: 'step', step: 'safety backup', status: 'done', detail: safetyBackup });
  }
  const from = await platformCheckTarget(kc, config, target, opts.from);

  // No scheduled backup may start against a cluster being rebuilt: the CronJobs are suspended, and put back as they were.
  const crons = (await batch.listNamespacedCronJob({ namespace })).items.filter((c) => c.metadata!.name!.startsWith('pgbackrest-'));
  const suspended = crons.filter((c) => !c.spec?.suspend).map((c) => c.metadata!.name!);
  const resume = async () => {
    for (const name of suspended) await batch.patchNamespacedCronJob({ namespace, name, body: { spec: { suspend: false } } }, merge);
  };
  const patroniYml = (restore?: Parameters<typeof platformPatroniConfig>[2]) =>
    core.patchNamespacedSecret(
      {
        namespace,
        name: SECRET_NAMES.postgresConfig,
        body: { data: { 'patroni.yml': Buffer.from(platformPatroniConfig(config, secrets, restore)).toString('base64') } },
      },
      merge,
    );
  const scale = (replicas: number) => apps.patchNamespacedStatefulSet({ ...statefulSet(config), body: { spec: { replicas } } }, merge);

  report({ kind: 'step', step: 'stop', status: 'start', detail: `the backup CronJobs suspended, StatefulSet ${namespace}/${scope} scaled to 0` });
  for (const name of suspended) await batch.patchNamespacedCronJob({ namespace, name, body: { spec: { suspend: true } } }, merge);
  await scale(0);
  await waitFor(
    `every pod of ${namespace}/${scope} to stop`,
    async () => {
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: postgresPodSelector(scope) })).items;
      const left = pods.filter((p) => p.metadata?.ownerReferences?.some((o) => o.kind === 'StatefulSet' && o.name === scope));
      if (left.length) throw new Error(`still there: ${left.map((p) => p.metadata!.name).join(', ')}`);
      return true;
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  report({ kind: 'step', step: 'stop', status: 'done', detail: 'every member' });

  const aside = `data.before-restore-${stamp().toLowerCase()}`;
  const dataName = PGDATA.slice(PGDATA.lastIndexOf('/') + 1);
  const root = PGDATA.slice(0, PGDATA.lastIndexOf('/'));
  const putBack = `to go back: scale the StatefulSet to 0, move ${root}/${aside} back to ${PGDATA} on each member's volume, \`gardenos up\` (the members elect a leader among themselves again)`;
  report({ kind: 'step', step: 'prepare', status: 'start', detail: `every data directory moved aside to ${root}/${aside}` });
  await onEveryVolume(kc, config, 'aside', `cd ${root} 2>/dev/null || exit 0; if [ -e ${dataName} ]; then mv ${dataName} ${aside}; echo moved; fi`, timeoutMs);
  const etcd = new EtcdClient(
    etcdClientUrls(config, productionTopology(config)),
    { ca: caFile, cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
    { timeoutMs: 3000 },
  );
  const keys = patroniKeys(config.postgres.namespace, scope);
  let dcsBackup: string;
  try {
    // Patroni removes its leader key when it stops; a killed one's lapses with its TTL.
    await waitFor("the leader key to go (it lapses with Patroni's TTL)", async () => ((await etcd.get(keys.leader)) === null ? true : undefined), {
      timeoutMs: (config.postgres.ttl + 30) * 1000,
      intervalMs: 1_000,
    });
    const cleaned = await cleanPatroniKeys({
      etcd,
      keys,
      scope,
      answering: async () => ((await clusterView(config, caFile)) ? ["a member's Patroni still answers"] : []),
      backupDir: join(secretsDir, 'dcs-backups'),
      aliveHint: `a pod of ${namespace}/${scope} still runs: kubectl -n ${namespace} get pods`,
    }).catch((e: unknown) => {
      if (e instanceof GardenError && e.code === 'NOT_RUNNING') return { backup: '(there were no keys)', deleted: [] };
      throw e;
    });
    dcsBackup = cleaned.backup;
  } catch (e) {
    throw new GardenError('STATE_CONFLICT', "cleaning Patroni's keys failed; the members are stopped and their data directories moved aside", {
      details: [describe(e)],
      hint: putBack,
      cause: e,
    });
  } finally {
    etcd.close();
  }
  report({ kind: 'step', step: 'prepare', status: 'done', detail: `Patroni's keys backed up to ${dcsBackup}` });

  // Member 0 alone, with the bootstrap from the backup in its patroni.yml until it leads.
  const first = `${scope}-0`;
  // Recovery settings are Patroni's (recovery_conf): pgBackRest only lays the files down.
  const command = `${pgbackrest(PGBACKREST_CONFIG, config, PGDATA)} --set=${from.label} --type=none restore`;
  report({ kind: 'step', step: 'restore', member: first, status: 'start', detail: `${from.label} + WAL to ${describeTarget(target)}` });
  try {
    await patroniYml({ command, recoveryConf: recoverySettings(target, restoreCommand(PGBACKREST_CONFIG, config, PGDATA)) });
    await scale(1);
    await waitFor(
      `${first} to restore and become the leader (its log: kubectl -n ${namespace} logs ${first} -c postgres)`,
      async () => (await clusterView(config, caFile))?.members.some((m) => m.name === first && m.role === 'leader' && m.state === 'running'),
      { timeoutMs, intervalMs: 1_000 },
    );
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `${first} did not come back from ${from.label} at ${describeTarget(target)}`, {
      details: [describe(e), `the data directories are beside their places (${root}/${aside}); Patroni's keys are in ${dcsBackup}`],
      hint: `kubectl -n ${namespace} logs ${first} -c postgres; ${putBack}`,
      cause: e,
    });
  } finally {
    // Back to the plain configuration for every pod that starts from now on (the bootstrap only matters to a member that initialises).
    await patroniYml();
  }
  report({ kind: 'step', step: 'restore', member: first, status: 'done', detail: 'leader' });

  report({ kind: 'step', step: 'replicas', status: 'start', detail: 'copied from the restored leader' });
  await scale(members);
  await waitFor(
    'every member to run again',
    async () => {
      const v = await clusterView(config, caFile);
      return v !== undefined && readyLeader(v, { members, synchronous: config.postgres.synchronousMode }) === first;
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  report({ kind: 'step', step: 'replicas', status: 'done' });
  await onEveryVolume(kc, config, 'cleanup', `rm -rf ${root}/${aside}`, timeoutMs);

  // The restored cluster runs on a new timeline that forked before any later backup: a full backup starts its history.
  report({ kind: 'step', step: 'full backup', status: 'start', detail: "the new timeline's first" });
  const newBackup = (await platformBackup(kc, config, 'full', { report, timeoutMs })).backup.label;
  report({ kind: 'step', step: 'full backup', status: 'done', detail: newBackup });
  await resume();
  return { target: describeTarget(target), from: from.label, leader: first, safetyBackup, newBackup, dcsBackup, durationMs: Date.now() - started };
}

export interface PlatformBesideResult {
  target: string;
  from: string;
  namespace: string;
  pod: string;
  /** How to read it: psql in the pod, on its socket. */
  psql: string;
  durationMs: number;
}

/**
 * `db restore --to … --beside`: the point restored into a pod of its own beside the cluster (on the repository's
 * node, Unix socket only) and left running to be read; the cluster is not touched. `pgbackrest check` first, so every
 * WAL up to now is in the repository. One at a time: an existing one is named, with how to stop it.
 */
export async function platformRestoreBeside(
  kc: KubeConfig,
  config: Config,
  target: RecoveryTarget,
  opts: { from?: string; report: Reporter; timeoutMs: number },
): Promise<PlatformBesideResult> {
  const started = Date.now();
  const namespace = config.namespaces.database;
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const existing = await core.readNamespacedPod({ namespace, name: BESIDE_POD }).catch(() => undefined);
  if (existing)
    throw new GardenError('STATE_CONFLICT', `a restore beside the cluster already runs (pod ${namespace}/${BESIDE_POD}, ${existing.status?.phase})`, {
      hint: 'stop it first: gardenos db restore --stop-beside',
    });
  const from = await platformCheckTarget(kc, config, target, opts.from);
  // Everything written up to now reaches the repository before the restore reads it (no backup is added: the choice stands).
  await platformBackupCheck(kc, config, opts.report);
  opts.report({
    kind: 'step',
    step: 'restore beside',
    status: 'start',
    detail: `${from.label} + WAL to ${describeTarget(target)}: pod ${namespace}/${BESIDE_POD}`,
  });
  await core.createNamespacedPod({ namespace, body: besidePod(config, config.postgres.image, from.label, targetOptions(target)) as V1Pod });
  const psql = ['psql', '-X', '-h', BESIDE_SOCKET, '-U', USERS.superuser, '-d', 'postgres'];
  await waitFor(
    `the restored PostgreSQL in ${namespace}/${BESIDE_POD} to reach ${describeTarget(target)} and promote`,
    async () => {
      const pod = await core.readNamespacedPod({ namespace, name: BESIDE_POD });
      if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
        const log = String(await core.readNamespacedPodLog({ namespace, name: BESIDE_POD, tailLines: 12 }).catch((e: unknown) => describe(e)));
        throw new GardenError('BACKEND_UNAVAILABLE', `the restore beside the cluster stopped (${pod.status.phase})`, {
          details: log.trim().split('\n'),
          hint: `kubectl -n ${namespace} logs ${BESIDE_POD}; then gardenos db restore --stop-beside`,
        });
      }
      const r = await execInPod(
        kc,
        { namespace, pod: BESIDE_POD, container: BACKUP_REPO_CONTAINER },
        [...psql, '-At', '-c', 'select pg_is_in_recovery()'],
        10_000,
      );
      return r.stdout.trim() === 'f' ? true : undefined;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: 1_000, isFatal: (e) => e instanceof GardenError && e.code === 'BACKEND_UNAVAILABLE' },
  );
  opts.report({ kind: 'step', step: 'restore beside', status: 'done', detail: 'promoted at the target' });
  return {
    target: describeTarget(target),
    from: from.label,
    namespace,
    pod: BESIDE_POD,
    psql: `kubectl -n ${namespace} exec -it ${BESIDE_POD} -- ${psql.join(' ')}`,
    durationMs: Date.now() - started,
  };
}

/** `db restore --stop-beside`: the pod of a restore beside the cluster deleted (its scratch space goes with it); false when none ran. */
export async function platformStopBeside(kc: KubeConfig, config: Config): Promise<boolean> {
  const namespace = config.namespaces.database;
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  if (!(await core.readNamespacedPod({ namespace, name: BESIDE_POD }).catch(() => undefined))) return false;
  await core.deleteNamespacedPod({ namespace, name: BESIDE_POD, gracePeriodSeconds: 10 });
  await waitFor(
    `pod ${namespace}/${BESIDE_POD} to go`,
    async () => ((await core.readNamespacedPod({ namespace, name: BESIDE_POD }).catch(() => undefined)) ? undefined : true),
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  return true;
}
