// Backups on the platform (backups.enabled): pgBackRest with a repository of its own. PostgreSQL's pods run on
// their nodes' disks, so no directory is shared by the members: the repository is a pod (`pgbackrest-repo`) with
// its own local-path volume, running pgBackRest's TLS server; every member pushes WAL to it from whichever is
// primary (archive_command), and runs pgBackRest's TLS server beside PostgreSQL (a sidecar) so that backups,
// taken on the repository's side, reach its data directory — from a standby where one is healthy. Both directions
// are mutual TLS from GardenOS's CA, each server letting in only the other side's certificate. The schedules are
// CronJobs (one per backup type in backups.schedule), each a pod beside the repository's volume; a full backup is
// followed by a restore test when backups.schedule.verifyAfterFull is on. Crunchy's PGO keeps the same shape.
// With backups.repository.s3 the repository pod stores into the bucket instead (its volume keeps only the locks and
// the last restore test's result): only its configuration holds the access key; the members name no storage at all.
import { createHash } from 'node:crypto';
import type { S3Credentials } from '../../config/credentials.ts';
import type { Config } from '../../config/schema.ts';
import { USERS } from '../files.ts';
import { renderPgbackrestMemberConfig, renderPgbackrestRepoConfig, stanzaOf, type PgbackrestScratch } from '../pgbackrest.ts';
import { productionTopology } from '../topology.ts';
import { labelsFor, type Manifest } from './manifest.ts';
import { PGDATA, SECRET_NAMES } from './names.ts';

/** The repository's StatefulSet, Service, certificate (file stem and common name) and pod. */
export const BACKUP_REPO = 'pgbackrest-repo';
/** The repository's pod, where `db backup list` reads pgBackRest's info. */
export const backupRepoPod = () => `${BACKUP_REPO}-0`;
export const BACKUP_REPO_CONTAINER = 'pgbackrest';
/** Where pgBackRest finds its configuration without --config, in every pod that runs it. */
export const PGBACKREST_CONFIG = '/etc/pgbackrest/pgbackrest.conf';
/** The repository's volume, on the repository's side: the backups and WAL, unless they are in S3. */
export const REPO_PATH = '/var/lib/pgbackrest';
/** The S3 endpoint's CA (backups.repository.s3.caFile, copied into the Secret) where the repository's pods read it. */
export const S3_CA = '/etc/pgbackrest/s3-ca.crt';
/** The CronJob of each backup type; `db backup` runs one of them now (a Job from its template). */
export const backupCronJob = (type: 'full' | 'diff' | 'incr') => `pgbackrest-${type}`;
/** Where a scheduled restore test writes its result, on the repository's volume (`db backup list` reads it). */
export const VERIFY_RESULT = `${REPO_PATH}/gardenos/last-verify.json`;
/**
 * Every pod that runs pgBackRest has `enableServiceLinks: false`: Kubernetes would put PGBACKREST_REPO_SERVICE_HOST
 * and the like (from the Service pgbackrest-repo) into its environment, which pgBackRest reads as options of its own.
 */
export const PGBACKREST_POD = { enableServiceLinks: false } as const;

/** The label a backup Job and its pod carry: the backup type it takes. */
export const BACKUP_TYPE_LABEL = 'gardenos.dev/backup-type';

const UID = 999;
const TMP = '/tmp';
/** Locks on the repository's volume: every pod that writes the repository (server, each Job) shares them, one node's kernel. */
const repoScratch: PgbackrestScratch = { lockDir: `${REPO_PATH}/gardenos/lock`, spoolDir: `${TMP}/pgbackrest` };
const memberScratch: PgbackrestScratch = { lockDir: `${TMP}/pgbackrest`, spoolDir: `${TMP}/pgbackrest` };
const REPO_TLS_DIR = '/etc/pgbackrest/tls';
/** The members' TLS pair: PostgreSQL's own (postgres-tls), mounted where Patroni reads it; its common name is the scope. */
export const MEMBER_TLS = { ca: '/etc/patroni/tls/ca.crt', cert: '/etc/patroni/tls/tls.crt', key: '/etc/patroni/tls/tls.key' };

/** The name a member's pod answers to in cluster DNS (the StatefulSet's headless Service): the repository connects to it. */
export function memberHosts(config: Config): string[] {
  const { scope } = config.postgres;
  const ns = config.namespaces.database;
  return productionTopology(config).postgres.map((_, i) => `${scope}-${i}.${scope}.${ns}.svc`);
}

export const backupRepoHost = (config: Config) => `${BACKUP_REPO}.${config.namespaces.database}.svc`;

/** The members' pgbackrest.conf (the Secret's `member.conf`): holds the cipher passphrase. */
export function memberPgbackrestConfig(config: Config, dataDir: string, socketDir: string, cipherPass: string | undefined): string {
  return renderPgbackrestMemberConfig({
    config,
    repoHost: backupRepoHost(config),
    ...(cipherPass ? { cipherPass } : {}),
    tls: MEMBER_TLS,
    scratch: memberScratch,
    repoClientCn: BACKUP_REPO,
    member: { name: 'this-pod', dataDir, socketDir, port: config.postgres.port },
  });
}

/**
 * The repository pod's template annotation: a short hash of what its configuration is made from (gardenos.yaml's
 * backups, schedules aside; no secret), so that `gardenos up` restarts its server when the repository moves (say into
 * S3) or its cipher or retention changes. A new S3 access key in the same credentials file is not seen here: the docs
 * say to restart the pod after one.
 */
export const REPOSITORY_REVISION_ANNOTATION = 'gardenos.dev/repository-revision';
export function repositoryRevision(config: Config): string {
  const { schedule: _, ...rest } = config.backups;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 12);
}

/** The repository's pgbackrest.conf (the Secret's `repo.conf`); `s3Key` with backups.repository.s3. */
export function repoPgbackrestConfig(config: Config, dataDir: string, socketDir: string, cipherPass: string | undefined, s3Key?: S3Credentials): string {
  const s3 = config.backups.repository.s3;
  return renderPgbackrestRepoConfig({
    config,
    repoPath: REPO_PATH,
    ...(cipherPass ? { cipherPass } : {}),
    ...(s3 && s3Key ? { s3: { key: s3Key, ...(s3.caFile ? { caFile: S3_CA } : {}) } } : {}),
    tls: { ca: `${REPO_TLS_DIR}/ca.crt`, cert: `${REPO_TLS_DIR}/tls.crt`, key: `${REPO_TLS_DIR}/tls.key` },
    scratch: repoScratch,
    // PostgreSQL's certificate (postgres-server) has the scope as its common name.
    memberClientCn: config.postgres.scope,
    members: memberHosts(config).map((host, i) => ({ name: `member-${i}`, host, dataDir, socketDir, port: config.postgres.port })),
    superuser: USERS.superuser,
  });
}

const restricted = {
  runAsUser: UID,
  runAsGroup: UID,
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

/** The pgBackRest sidecar of each PostgreSQL member: its TLS server on the node's address, for the repository only. */
export function memberSidecar(config: Config, image: string, mounts: { pgdata: string; run: string }) {
  return {
    name: 'pgbackrest',
    image,
    command: ['pgbackrest', 'server', '--tls-server-address=$(POD_IP)'],
    env: [
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      // A backup's queries reach PostgreSQL through this pod's socket as the superuser (scram-sha-256).
      { name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: SECRET_NAMES.postgresConfig, key: 'superuser-password' } } },
    ],
    ports: [{ name: 'pgbackrest', containerPort: config.backups.serverPort }],
    readinessProbe: { tcpSocket: { port: config.backups.serverPort }, periodSeconds: 10 },
    securityContext: restricted,
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '512Mi' } },
    volumeMounts: [
      { name: 'pgdata', mountPath: mounts.pgdata },
      { name: 'run', mountPath: mounts.run },
      { name: 'tls', mountPath: '/etc/patroni/tls', readOnly: true },
      { name: 'pgbackrest', mountPath: '/etc/pgbackrest', readOnly: true },
      { name: 'pgbackrest-tmp', mountPath: TMP },
    ],
  };
}

/** The members' create_replica_method (backups.replicaFromBackupMaxAgeHours > 0), from the ConfigMap pgbackrest-scripts. */
export const REPLICA_SCRIPT = '/etc/pgbackrest/replica-from-backup.py';
const SCRIPTS_CONFIGMAP = 'pgbackrest-scripts';

/**
 * Patroni's `pgbackrest` create_replica_method on a member (tried before basebackup, for a new replica and `db reinit`):
 * the repository's newest backup restored as a standby when it is at most replicaFromBackupMaxAgeHours old **and on
 * the leader's timeline** — then the backup is a point of the leader's own history, whatever happened before (after a
 * `db restore --to`, every older backup is of a history the leader forked from, and is refused here until the new
 * timeline's first). Otherwise it exits 1 and Patroni copies from the leader. Python: Patroni's own interpreter is in
 * the image; the leader's timeline comes from this member's Patroni REST API (its /cluster, on POD_IP), the backups from
 * `pgbackrest info` through the repository pod.
 */
export function replicaFromBackupPy(config: Config, dataDir: string, ca = MEMBER_TLS.ca): string {
  const py = (v: unknown) => JSON.stringify(v);
  return [
    '# Written by GardenOS from gardenos.yaml (backups.replicaFromBackupMaxAgeHours); changes here are overwritten.',
    'import json, os, ssl, subprocess, sys, time, urllib.request',
    '',
    `BASE = ["pgbackrest", ${py(`--config=${PGBACKREST_CONFIG}`)}, ${py(`--stanza=${stanzaOf(config)}`)}]`,
    `PGDATA = ${py(`--pg1-path=${dataDir}`)}`,
    `MAX_AGE = ${Math.round(config.backups.replicaFromBackupMaxAgeHours * 3600)}`,
    `CA = ${py(ca)}`,
    '',
    'def copy(why):',
    '    print(f"gardenos: {why}: copying from the leader", file=sys.stderr, flush=True)',
    '    sys.exit(1)',
    '',
    'try:',
    '    info = subprocess.run(BASE + ["--output=json", "--log-level-console=off", "info"], capture_output=True, text=True, timeout=120)',
    '    if info.returncode != 0:',
    '        copy(f"the repository could not be read (pgbackrest info: {(info.stderr.strip().splitlines() or [info.returncode])[-1]})")',
    '    backups = [b for b in json.loads(info.stdout)[0].get("backup", []) if not b.get("error")]',
    'except (OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as e:',
    '    copy(f"the repository could not be read ({e!r})")',
    'if not backups:',
    '    copy("the repository holds no backup")',
    'newest = backups[-1]',
    'age = int(time.time() - newest["timestamp"]["stop"])',
    'if age > MAX_AGE:',
    '    copy(f"the newest backup, {newest[\'label\']}, is {age} s old (more than {MAX_AGE})")',
    'try:',
    // Patroni hands its methods no PATRONI_* variables: the pod's address (the REST API listens there) and the port.
    '    ip = os.environ["POD_IP"]',
    `    url = "https://" + (f"[{ip}]" if ":" in ip else ip) + ":${config.postgres.patroniPort}/cluster"`,
    '    with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=CA), timeout=10) as r:',
    '        leader = next(m for m in json.load(r)["members"] if m["role"] == "leader")',
    '    timeline = int(leader["timeline"])',
    'except Exception as e:',
    '    copy(f"the leader\'s timeline could not be read ({e!r})")',
    'backup_timeline = int(newest["archive"]["start"][:8], 16)',
    'if backup_timeline != timeline:',
    '    copy(f"the newest backup, {newest[\'label\']}, is on timeline {backup_timeline}, the leader on {timeline}")',
    'print(f"gardenos: restoring the newest backup, {newest[\'label\']} ({age} s old, timeline {timeline}), as a standby", file=sys.stderr, flush=True)',
    'os.execvp("pgbackrest", BASE + [PGDATA, "--set=" + newest["label"], "--type=standby", "restore"])',
    '',
  ].join('\n');
}

/**
 * The volumes the members' pgBackRest needs: its configuration (member.conf only — never the repository's key), with
 * the replica method's script beside it when there is one, and scratch.
 */
export function memberVolumes(config: Config) {
  const conf = { secret: { name: SECRET_NAMES.pgbackrest, items: [{ key: 'member.conf', path: 'pgbackrest.conf' }] } };
  const script = { configMap: { name: SCRIPTS_CONFIGMAP, items: [{ key: 'replica-from-backup.py', path: 'replica-from-backup.py' }] } };
  return [
    { name: 'pgbackrest', projected: { defaultMode: 0o400, sources: config.backups.replicaFromBackupMaxAgeHours > 0 ? [conf, script] : [conf] } },
    { name: 'pgbackrest-tmp', emptyDir: {} },
  ];
}

/** The repository's volume arrives root-owned (local-path): made the postgres user's, as PostgreSQL's is. */
function permissionsStep(image: string) {
  return {
    name: 'volume-permissions',
    image,
    command: ['sh', '-c', `[ "$(stat -c %u:%g ${REPO_PATH})" = ${UID}:${UID} ] || chown -R ${UID}:${UID} ${REPO_PATH}; chmod 0750 ${REPO_PATH}`],
    securityContext: { runAsUser: 0, runAsGroup: 0 },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    volumeMounts: [{ name: 'repo', mountPath: REPO_PATH }],
  };
}

/** What every pod on the repository's volume shares: no API token, no service links, the volume made the postgres user's. */
function repoPodBase(image: string) {
  return { automountServiceAccountToken: false, ...PGBACKREST_POD, securityContext: { fsGroup: UID }, initContainers: [permissionsStep(image)] };
}

function repoPodVolumes(config: Config, claim?: string) {
  return [
    {
      name: 'config',
      secret: {
        secretName: SECRET_NAMES.pgbackrest,
        defaultMode: 0o400,
        items: [
          { key: 'repo.conf', path: 'pgbackrest.conf' },
          { key: 'ca.crt', path: 'tls/ca.crt' },
          { key: 'tls.crt', path: 'tls/tls.crt' },
          { key: 'tls.key', path: 'tls/tls.key' },
          ...(config.backups.repository.s3?.caFile ? [{ key: 's3-ca.crt', path: S3_CA.slice('/etc/pgbackrest/'.length) }] : []),
        ],
      },
    },
    { name: 'tmp', emptyDir: {} },
    ...(claim ? [{ name: 'repo', persistentVolumeClaim: { claimName: claim } }] : []),
  ];
}

const repoMounts = [
  { name: 'repo', mountPath: REPO_PATH },
  { name: 'config', mountPath: '/etc/pgbackrest', readOnly: true },
  { name: 'tmp', mountPath: TMP },
];

/**
 * PostgreSQL on restored data in a pod of the repository's side: the members' postgresql.conf comes along, so their
 * addresses, TLS files, synchronous standbys and archiving are overridden; only the pod's socket under `dir`, with an
 * hba of its own (trust there: nobody but `kubectl exec` into the pod can reach it).
 */
const socketOnly = (dir: string) => [
  '-c listen_addresses=',
  '-c unix_socket_directories=$sock',
  '-c port=5432',
  `-c hba_file=${dir}/hba.conf`,
  '-c ssl=off',
  '-c archive_mode=off',
  '-c synchronous_standby_names=',
  '-c shared_buffers=32MB',
];

/** `db restore --to … --beside` on the platform: the pod, its container and where its PostgreSQL listens. */
export const BESIDE_POD = 'pgbackrest-beside';
export const BESIDE_SOCKET = `${TMP}/beside/run`;

/**
 * The pod of `db restore --to … --beside`: on the repository's volume (its node), the backup `label` restored into its
 * scratch space with recovery to the target (`targetOptions`: pgBackRest's --type/--target), archiving off, then
 * PostgreSQL in the foreground on a Unix socket only — it promotes at the target and stays up to be read with
 * `kubectl exec`; the running cluster is not touched.
 */
export function besidePod(config: Config, image: string, label: string, targetOptions: string[]): Manifest {
  const stanza = stanzaOf(config);
  const bin = `/usr/lib/postgresql/${config.postgres.version}/bin`;
  const resetHosts = memberHosts(config).map((_, i) => `--reset-pg${i + 1}-host`);
  const dir = `${TMP}/beside`;
  const script = [
    'set -eu',
    `data=${dir}/data; sock=${BESIDE_SOCKET}; mkdir -p "$data" "$sock"; chmod 0700 "$data"`,
    [
      'pgbackrest',
      `--stanza=${stanza}`,
      ...resetHosts,
      '--pg1-path="$data"',
      `--set=${label}`,
      ...targetOptions.map((o) => `'${o}'`),
      '--archive-mode=off',
      'restore',
    ].join(' '),
    `printf 'local all all trust\\n' > ${dir}/hba.conf`,
    `exec ${bin}/postgres -D "$data" ${socketOnly(dir).join(' ')}`,
    '',
  ].join('\n');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: BESIDE_POD, namespace: config.namespaces.database, labels: { ...labelsFor(BESIDE_POD), 'app.kubernetes.io/component': 'backup' } },
    spec: {
      restartPolicy: 'Never',
      ...repoPodBase(image),
      containers: [
        {
          name: BACKUP_REPO_CONTAINER,
          image,
          command: ['sh', '-c', script],
          securityContext: restricted,
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
          volumeMounts: repoMounts,
        },
      ],
      volumes: repoPodVolumes(config, `repo-${backupRepoPod()}`),
    },
  };
}

/**
 * What a backup Job runs: the stanza made if the repository is new (idempotent), the backup, and after a full
 * backup with verifyAfterFull a restore test — the newest backup restored into the pod's scratch space, started on
 * a socket only with recovery to the backup's end, checked with pg_amcheck and row counts, its result written to
 * the repository's volume. The script is rendered here so `render` shows exactly what runs.
 */
export function backupScript(config: Config, type: 'full' | 'diff' | 'incr'): string {
  const stanza = stanzaOf(config);
  const bin = `/usr/lib/postgresql/${config.postgres.version}/bin`;
  const verify = type === 'full' && config.backups.schedule.verifyAfterFull;
  const lines = [
    'set -eu',
    `mkdir -p ${repoScratch.lockDir} $(dirname ${VERIFY_RESULT})`,
    `pgbackrest --stanza=${stanza} stanza-create`,
    `pgbackrest --stanza=${stanza} --type=${type} backup`,
  ];
  if (verify) {
    // The newest full backup (the one just taken) into scratch space, with no member host: restore runs where the data goes.
    const resetHosts = memberHosts(config)
      .map((_, i) => `--reset-pg${i + 1}-host`)
      .join(' ');
    const psql = `${bin}/psql -X -At -h "$sock" -U ${USERS.superuser} -d postgres`;
    const opts = socketOnly(`${TMP}/verify`).join(' ');
    lines.push(
      'started=$(date +%s)',
      `label=$(pgbackrest --stanza=${stanza} info | sed -n 's/^ *full backup: //p' | tail -n 1)`,
      `data=${TMP}/verify/data; sock=${TMP}/verify/run; mkdir -p "$data" "$sock"; chmod 0700 "$data"`,
      // The result, whatever happens, on the repository's volume: `db backup list` and status read it.
      `result() { printf '%s\\n' "$1" > ${VERIFY_RESULT}.tmp && mv ${VERIFY_RESULT}.tmp ${VERIFY_RESULT}; }`,
      'fail() { result "{\\"ok\\":false,\\"label\\":\\"$label\\",\\"at\\":\\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\",\\"error\\":\\"$1\\"}"; echo "gardenos: the restore test of $label failed: $1" >&2; exit 1; }',
      `pgbackrest --stanza=${stanza} ${resetHosts} --pg1-path="$data" --set="$label" --type=immediate --target-action=promote --archive-mode=off restore || fail "pgbackrest could not restore it"`,
      `printf 'local all all trust\\n' > ${TMP}/verify/hba.conf`,
      `${bin}/pg_ctl -D "$data" -w -t 600 -l ${TMP}/verify/postgres.log -o "${opts}" start || { tail -n 20 ${TMP}/verify/postgres.log >&2; fail "PostgreSQL did not start on the restored data"; }`,
      // Recovery to the backup's end finishes with a promotion (ten minutes at most; a stopped server ends it at once).
      `i=0; until [ "$(${psql} -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do`,
      `  i=$((i + 1)); [ $i -le 600 ] && ${bin}/pg_ctl -D "$data" status >/dev/null || { tail -n 20 ${TMP}/verify/postgres.log >&2; fail "recovery did not finish"; }; sleep 1`,
      'done',
      `${bin}/pg_amcheck -h "$sock" -U ${USERS.superuser} --all --install-missing --heapallindexed || fail "pg_amcheck found corruption"`,
      `dbs=$(${psql} -c "select count(*) from pg_database where datallowconn")`,
      `${bin}/pg_ctl -D "$data" -w -m fast stop`,
      'result "{\\"ok\\":true,\\"label\\":\\"$label\\",\\"at\\":\\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\",\\"seconds\\":$(( $(date +%s) - started )),\\"databases\\":$dbs}"',
      'echo "gardenos: the restore test of $label passed" >&2',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The pod a backup Job runs: pgBackRest on the repository's side, the repository's volume mounted (same node, local-path). */
function backupPodSpec(config: Config, image: string, type: 'full' | 'diff' | 'incr') {
  return {
    restartPolicy: 'Never',
    ...repoPodBase(image),
    containers: [
      {
        name: BACKUP_REPO_CONTAINER,
        image,
        command: ['sh', '-c', backupScript(config, type)],
        securityContext: restricted,
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
        volumeMounts: repoMounts,
      },
    ],
    volumes: repoPodVolumes(config, `repo-${backupRepoPod()}`),
  };
}

export function backupManifests(config: Config, image: string): Manifest[] {
  const b = config.backups;
  if (!b.enabled) return [];
  const ns = config.namespaces.database;
  const selector = labelsFor(BACKUP_REPO);
  const labels = { ...selector, 'app.kubernetes.io/component': 'backup' };
  // Not the repository's labels: its Service must never send a member's WAL to a Job's pod.
  const jobLabels = (type: string) => ({ ...labelsFor('pgbackrest-backup'), 'app.kubernetes.io/component': 'backup', [BACKUP_TYPE_LABEL]: type });
  const schedules = (['full', 'diff', 'incr'] as const).filter((t) => b.schedule[t]);
  return [
    ...(b.replicaFromBackupMaxAgeHours > 0
      ? [
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: SCRIPTS_CONFIGMAP, namespace: ns, labels: labelsFor(BACKUP_REPO) },
            data: { 'replica-from-backup.py': replicaFromBackupPy(config, PGDATA) },
          },
        ]
      : []),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: BACKUP_REPO, namespace: ns, labels },
      spec: { selector, ports: [{ name: 'pgbackrest', port: b.serverPort, targetPort: b.serverPort }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: BACKUP_REPO, namespace: ns, labels },
      spec: {
        serviceName: BACKUP_REPO,
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels, annotations: { [REPOSITORY_REVISION_ANNOTATION]: repositoryRevision(config) } },
          spec: {
            ...repoPodBase(image),
            containers: [
              {
                name: BACKUP_REPO_CONTAINER,
                image,
                command: ['sh', '-c', `mkdir -p ${repoScratch.lockDir} && exec pgbackrest server`],
                ports: [{ name: 'pgbackrest', containerPort: b.serverPort }],
                readinessProbe: { tcpSocket: { port: b.serverPort }, periodSeconds: 5 },
                livenessProbe: { tcpSocket: { port: b.serverPort }, periodSeconds: 20, failureThreshold: 6 },
                securityContext: restricted,
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },
                volumeMounts: repoMounts,
              },
            ],
            volumes: repoPodVolumes(config),
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'repo' },
            spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: b.repository.storage } } },
          },
        ],
      },
    },
    ...schedules.map((type) => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: backupCronJob(type), namespace: ns, labels: jobLabels(type) },
      spec: {
        schedule: b.schedule[type]!,
        ...(b.schedule.timeZone ? { timeZone: b.schedule.timeZone } : {}),
        // pgBackRest's own lock refuses a second backup; Forbid keeps a slow one from piling up Jobs.
        concurrencyPolicy: 'Forbid',
        // Said, so that `gardenos up` takes it back from a `db restore --to` that stopped half-way (it suspends them).
        suspend: false,
        startingDeadlineSeconds: 3600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          metadata: { labels: jobLabels(type) },
          spec: {
            // A failed backup is reported, not retried blindly: the next schedule (or `db backup`) tries again.
            backoffLimit: 0,
            activeDeadlineSeconds: 6 * 3600,
            template: { metadata: { labels: jobLabels(type) }, spec: backupPodSpec(config, image, type) },
          },
        },
      },
    })),
  ];
}
