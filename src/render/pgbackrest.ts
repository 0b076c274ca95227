// pgBackRest's configuration for the Patroni cluster: one stanza (the Patroni scope) with every member
// as a pgN host, so that `backup` finds the primary and copies from a standby (backup-standby), and the
// archive_command / restore_command each member's PostgreSQL runs. The file holds the repository's
// cipher passphrase: 0600, readable by PostgreSQL's user only.
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
  superuser: string;
}

export const stanzaOf = (config: Config) => config.postgres.scope;

export function renderPgbackrestConfig({ config, files, members, cipherPass, superuser }: PgbackrestRenderInput): string {
  const b = config.backups;
  if (b.encryption !== 'none' && !cipherPass) throw new Error('renderPgbackrestConfig needs the cipher passphrase');
  const global: [string, string | number][] = [
    ['repo1-path', files.repoPath],
    ['repo1-retention-full', b.retentionFull],
    ['repo1-retention-diff', b.retentionDiff],
    ...(b.encryption === 'none'
      ? []
      : ([
          ['repo1-cipher-type', b.encryption],
          ['repo1-cipher-pass', cipherPass!],
        ] as [string, string][])),
    ['compress-type', b.compression],
    ['archive-timeout', b.archiveTimeoutSeconds],
    // A base backup starts with an immediate checkpoint rather than waiting for the next one.
    ['start-fast', 'y'],
    ['backup-standby', 'y'],
    ['delta', 'y'],
    ['log-path', files.logDir],
    ['lock-path', files.lockDir],
    ['spool-path', files.spoolDir],
    ['log-level-console', 'warn'],
    ['log-level-file', 'info'],
    ['log-level-stderr', 'error'],
  ];
  const stanza: [string, string | number][] = members.flatMap((m, i) => [
    [`pg${i + 1}-path`, m.dataDir],
    [`pg${i + 1}-socket-path`, m.socketDir],
    [`pg${i + 1}-port`, m.port],
    [`pg${i + 1}-user`, superuser],
  ]);
  const section = (name: string, kv: [string, string | number][]) => [`[${name}]`, ...kv.map(([k, v]) => `${k}=${v}`)].join('\n');
  return `# Written by GardenOS from gardenos.yaml (backups); changes here are overwritten.\n${section('global', global)}\n\n${section(stanzaOf(config), stanza)}\n`;
}

/** The pgBackRest invocation every command shares: this cluster's config and stanza, and the member's data directory as pg1. */
function pgbackrest(configFile: string, config: Config, dataDir: string): string {
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
