// pgBackRest's configuration for the Patroni cluster: one stanza (the Patroni scope) with every member
// as a pgN host, so that `backup` finds the primary and copies from a standby (backup-standby), and the
// archive_command / restore_command each member's PostgreSQL runs. The file holds the repository's
// cipher passphrase: 0600, readable by PostgreSQL's user only.
import type { S3Credentials } from '../config/credentials.ts';
import type { Config } from '../config/schema.ts';

export interface PgbackrestMember {
  name: string;
  dataDir: string;
  /** PostgreSQL's Unix socket directory (pgBackRest connects through it, as the superuser). */
  socketDir: string;
  port: number;
}

export interface PgbackrestFiles {
  configFile: string;
  repoPath: string;
  logDir: string;
  lockDir: string;
  spoolDir: string;
}

export interface PgbackrestRenderInput {
  config: Config;
  files: PgbackrestFiles;
  members: readonly PgbackrestMember[];
  /** The repository's cipher passphrase; required unless backups.encryption is none. */
  cipherPass?: string;
  /** The S3 access key, when the repository is S3 (backups.repository.s3). */
  s3?: S3Credentials;
  superuser: string;
}

export const stanzaOf = (config: Config) => config.postgres.scope;

type Options = [string, string | number][];

/** Where an S3 repository keeps this cluster's files inside the bucket: repository.path, else /<cluster.name>. */
export const s3RepoPath = (config: Config) => config.backups.repository.path ?? `/${config.cluster.name}`;

/**
 * The repository's storage: a directory (repo1-path), or an S3 bucket with the path as its prefix, always over TLS.
 * `caFile`: where the endpoint's CA is on the host that runs pgBackRest (default: backups.repository.s3.caFile).
 */
function storageOptions(config: Config, repoPath: string, s3Key: S3Credentials | undefined, caFile = config.backups.repository.s3?.caFile): Options {
  const s3 = config.backups.repository.s3;
  if (!s3) return [['repo1-path', repoPath]];
  if (!s3Key) throw new Error('the pgBackRest repository configuration needs the S3 access key');
  const [host, port] = s3.endpoint.split(':');
  return [
    ['repo1-type', 's3'],
    ['repo1-path', s3RepoPath(config)],
    ['repo1-s3-endpoint', host!],
    ...(port ? ([['repo1-storage-port', port]] as Options) : []),
    ['repo1-s3-bucket', s3.bucket],
    ['repo1-s3-region', s3.region],
    ['repo1-s3-uri-style', s3.uriStyle],
    ...(caFile ? ([['repo1-storage-ca-file', caFile]] as Options) : []),
    ['repo1-s3-key', s3Key.accessKeyId],
    ['repo1-s3-key-secret', s3Key.secretAccessKey],
  ];
}

/** The repository's cipher: what encrypts backups and WAL, on whichever side writes them. */
function cipherOptions(config: Config, cipherPass: string | undefined): Options {
  if (config.backups.encryption === 'none') return [];
  if (!cipherPass) throw new Error('the pgBackRest repository configuration needs the cipher passphrase');
  return [
    ['repo1-cipher-type', config.backups.encryption],
    ['repo1-cipher-pass', cipherPass],
  ];
}

/** The repository's own options: where it is, how long backups are kept, its cipher. */
function repositoryOptions(config: Config, repoPath: string, cipherPass: string | undefined, s3Key?: S3Credentials, s3CaFile?: string): Options {
  const b = config.backups;
  return [
    ...storageOptions(config, repoPath, s3Key, s3CaFile),
    ['repo1-retention-full', b.retentionFull],
    ['repo1-retention-diff', b.retentionDiff],
    ...cipherOptions(config, cipherPass),
  ];
}

/** How backups are taken (on the host that runs `backup`): an immediate checkpoint, from a standby, only what changed. */
const backupOptions: Options = [
  // A base backup starts with an immediate checkpoint rather than waiting for the next one.
  ['start-fast', 'y'],
  ['backup-standby', 'y'],
  ['delta', 'y'],
];

function logOptions(files: { logDir: string; lockDir: string; spoolDir: string }, fileLog = true): Options {
  return [
    ...(fileLog ? ([['log-path', files.logDir]] as Options) : []),
    ['lock-path', files.lockDir],
    ['spool-path', files.spoolDir],
    ['log-level-console', 'warn'],
    ['log-level-file', fileLog ? 'info' : 'off'],
    ['log-level-stderr', 'error'],
  ];
}

const section = (name: string, kv: Options) => [`[${name}]`, ...kv.map(([k, v]) => `${k}=${v}`)].join('\n');
const HEADER = '# Written by GardenOS from gardenos.yaml (backups); changes here are overwritten.';

export function renderPgbackrestConfig({ config, files, members, cipherPass, s3, superuser }: PgbackrestRenderInput): string {
  const b = config.backups;
  const global: Options = [
    ...repositoryOptions(config, files.repoPath, cipherPass, s3),
    ['compress-type', b.compression],
    ['archive-timeout', b.archiveTimeoutSeconds],
    ...backupOptions,
    ...logOptions(files),
  ];
  const stanza: Options = members.flatMap((m, i) => [
    [`pg${i + 1}-path`, m.dataDir],
    [`pg${i + 1}-socket-path`, m.socketDir],
    [`pg${i + 1}-port`, m.port],
    [`pg${i + 1}-user`, superuser],
  ]);
  return `${HEADER}\n${section('global', global)}\n\n${section(stanzaOf(config), stanza)}\n`;
}

/** Mutual TLS between the repository and the members: the CA, and this side's certificate and key. */
export interface PgbackrestTls {
  ca: string;
  cert: string;
  key: string;
}

/** Where pgBackRest keeps its locks and spool where it is not a local repository (a pod's scratch directory). */
export interface PgbackrestScratch {
  lockDir: string;
  spoolDir: string;
}

/** pgBackRest's TLS server (members and repository alike): its pair, and the one client certificate it lets in, for this stanza. */
function tlsServerOptions(config: Config, tls: PgbackrestTls, clientCn: string): Options {
  return [
    ['tls-server-port', config.backups.serverPort],
    ['tls-server-ca-file', tls.ca],
    ['tls-server-cert-file', tls.cert],
    ['tls-server-key-file', tls.key],
    ['tls-server-auth', `${clientCn}=${stanzaOf(config)}`],
  ];
}

/**
 * The platform, PostgreSQL's side (each member's pod): the repository is a remote host reached over mutual TLS
 * (archive-push, archive-get), and this member runs pgBackRest's TLS server so the repository can reach its data
 * directory for backups; only the repository's certificate (`repoClientCn`) is let in. The cipher is here too (a
 * member encrypts what it pushes), but not where the repository stores: a path or bucket the client does not name is
 * the repository server's own (found by experiment, pgBackRest 2.45) — so a member never holds an S3 key.
 */
export function renderPgbackrestMemberConfig(o: {
  config: Config;
  repoHost: string;
  cipherPass?: string;
  tls: PgbackrestTls;
  scratch: PgbackrestScratch;
  repoClientCn: string;
  member: PgbackrestMember;
}): string {
  const { config, tls, member } = o;
  const b = config.backups;
  const global: Options = [
    ...cipherOptions(config, o.cipherPass),
    ['repo1-host', o.repoHost],
    ['repo1-host-type', 'tls'],
    ['repo1-host-port', b.serverPort],
    ['repo1-host-ca-file', tls.ca],
    ['repo1-host-cert-file', tls.cert],
    ['repo1-host-key-file', tls.key],
    ['compress-type', b.compression],
    ['archive-timeout', b.archiveTimeoutSeconds],
    ...tlsServerOptions(config, tls, o.repoClientCn),
    ...logOptions({ logDir: '', ...o.scratch }, false),
  ];
  const stanza: Options = [
    ['pg1-path', member.dataDir],
    ['pg1-socket-path', member.socketDir],
    ['pg1-port', member.port],
  ];
  return `${HEADER}\n${section('global', global)}\n\n${section(stanzaOf(config), stanza)}\n`;
}

/**
 * The platform, the repository's side: the repository itself (encrypted, retention), every member as a TLS `pgN-host`
 * (so `backup` finds the primary and copies from a standby), and pgBackRest's TLS server, which lets in the members'
 * certificate (`memberClientCn`) to push and fetch WAL.
 */
export function renderPgbackrestRepoConfig(o: {
  config: Config;
  repoPath: string;
  cipherPass?: string;
  /** backups.repository.s3: the access key, and where the endpoint's CA is in the repository's pods. */
  s3?: { key: S3Credentials; caFile?: string };
  tls: PgbackrestTls;
  scratch: PgbackrestScratch;
  memberClientCn: string;
  /** Each member's address (its node's: the pods are on the host network), data directory, socket and port. */
  members: readonly (PgbackrestMember & { host: string })[];
  superuser: string;
}): string {
  const { config, tls } = o;
  const b = config.backups;
  const global: Options = [
    ...repositoryOptions(config, o.repoPath, o.cipherPass, o.s3?.key, o.s3?.caFile),
    ['archive-timeout', b.archiveTimeoutSeconds],
    ...backupOptions,
    ['tls-server-address', '*'],
    ...tlsServerOptions(config, tls, o.memberClientCn),
    ...logOptions({ logDir: '', ...o.scratch }, false),
  ];
  const stanza: Options = o.members.flatMap((m, i) => [
    [`pg${i + 1}-host`, m.host],
    [`pg${i + 1}-host-type`, 'tls'],
    [`pg${i + 1}-host-port`, b.serverPort],
    [`pg${i + 1}-host-ca-file`, tls.ca],
    [`pg${i + 1}-host-cert-file`, tls.cert],
    [`pg${i + 1}-host-key-file`, tls.key],
    [`pg${i + 1}-path`, m.dataDir],
    [`pg${i + 1}-socket-path`, m.socketDir],
    [`pg${i + 1}-port`, m.port],
    [`pg${i + 1}-user`, o.superuser],
  ]);
  return `${HEADER}\n${section('global', global)}\n\n${section(stanzaOf(config), stanza)}\n`;
}

/** The pgBackRest invocation every command shares: this cluster's config and stanza, and the member's data directory as pg1. */
export function pgbackrest(configFile: string, config: Config, dataDir: string): string {
  return `pgbackrest --config=${configFile} --stanza=${stanzaOf(config)} --pg1-path=${dataDir}`;
}

/** PostgreSQL's archive_command on a member: WAL goes to the repository (only the primary's runs, archive_mode on). */
export function archiveCommand(configFile: string, config: Config, dataDir: string): string {
  return `${pgbackrest(configFile, config, dataDir)} archive-push "%p"`;
}

/** restore_command: a standby or a restore reads WAL the primary no longer has from the repository. */
export function restoreCommand(configFile: string, config: Config, dataDir: string): string {
  return `${pgbackrest(configFile, config, dataDir)} archive-get %f "%p"`;
}

/**
 * The script Patroni runs to create a replica (its `pgbackrest` create_replica_method, tried before
 * basebackup): when the newest backup — as `marker` records it, seconds since the epoch — is at most
 * `maxAgeSeconds` old, a restore of it as a standby (the rest of the WAL comes from the repository, then
 * streaming from the leader); otherwise it exits 1 and Patroni copies from the leader instead. The primary's
 * disk and network are spared when a backup is recent.
 */
export function replicaFromBackupScript(configFile: string, config: Config, dataDir: string, marker: string, maxAgeSeconds: number): string {
  return [
    '#!/bin/sh',
    '# Written by GardenOS from gardenos.yaml (backups.replicaFromBackupMaxAgeHours); changes here are overwritten.',
    'set -eu',
    `newest=$(cat '${marker}' 2>/dev/null) || { echo "gardenos: no backup recorded in ${marker}: copying from the leader" >&2; exit 1; }`,
    'age=$(( $(date +%s) - newest ))',
    `if [ "$age" -gt ${maxAgeSeconds} ]; then echo "gardenos: the newest backup is $age s old (more than ${maxAgeSeconds}): copying from the leader" >&2; exit 1; fi`,
    `echo "gardenos: restoring the newest backup ($age s old) as a standby" >&2`,
    `exec ${pgbackrest(configFile, config, dataDir)} --type=standby restore`,
    '',
  ].join('\n');
}
