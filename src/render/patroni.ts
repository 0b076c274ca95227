// Patroni member configuration: the etcd3 DCS over mutual TLS, synchronous
// replication, data checksums, pg_rewind, scram-sha-256, TLS for PostgreSQL and
// the REST API, and basic auth on the REST API's unsafe endpoints.
import type { Config } from '../config/schema.ts';
import { USERS, type ClusterSecrets, type PatroniFiles } from './files.ts';
import { hostPort, type Member, type Topology } from './topology.ts';
import { toYaml } from './yaml.ts';

export interface PatroniRenderInput {
  config: Config;
  topology: Topology;
  member: Member;
  files: PatroniFiles;
  secrets: ClusterSecrets;
  /** backups.enabled: the member's archive_command and restore_command (pgBackRest), and its create_replica_method's command. */
  archive?: { archiveCommand: string; restoreCommand: string; replicaCommand?: string };
  /**
   * A cluster built from a backup instead of initdb (`db restore --to`): Patroni runs `command` on the
   * member that wins the initialize race, then recovers with `recoveryConf` and promotes.
   */
  restore?: { command: string; recoveryConf: Record<string, string> };
}

/** The bootstrap method's name in patroni.yml when a cluster is rebuilt from a backup. */
export const RESTORE_METHOD = 'gardenos_restore';

export function renderPgHba(_config: Config, topology: Topology): string[] {
  const auth = 'scram-sha-256';
  const members = topology.memberNetworks;
  return [
    // Patroni and local tools on the member itself.
    `local all all ${auth}`,
    ...members.map((net) => `hostssl replication ${USERS.replication} ${net} ${auth}`),
    ...members.map((net) => `hostssl all all ${net} ${auth}`),
    ...topology.clientNetworks.filter((n) => !members.includes(n)).map((net) => `hostssl all all ${net} ${auth}`),
    // Anything else, and any connection without TLS, is refused.
    'host all all 0.0.0.0/0 reject',
    'host all all ::/0 reject',
  ];
}

export function renderPatroniConfig({ config, topology, member, files, secrets, archive, restore }: PatroniRenderInput): string {
  const pg = config.postgres;
  const restApi = hostPort(member.address, pg.patroniPort);
  const pgHba = renderPgHba(config, topology);
  const postgresAddr = hostPort(member.address, pg.port);
  return toYaml({
    scope: pg.scope,
    namespace: pg.namespace,
    name: member.name,
    log: { level: 'INFO', format: '%(asctime)s %(levelname)s: %(message)s' },
    restapi: {
      listen: restApi,
      connect_address: restApi,
      certfile: files.tls.cert,
      keyfile: files.tls.key,
      cafile: files.tls.ca,
      verify_client: 'none',
      authentication: { username: USERS.restApi, password: secrets.restApiPassword },
    },
    etcd3: {
      hosts: topology.etcd.map((m) => hostPort(m.address, config.etcd.clientPort)),
      protocol: 'https',
      cacert: files.tls.ca,
      cert: files.tls.cert,
      key: files.tls.key,
    },
    bootstrap: {
      ...(restore
        ? {
            method: RESTORE_METHOD,
            [RESTORE_METHOD]: { command: restore.command, no_params: true, keep_existing_recovery_conf: false, recovery_conf: restore.recoveryConf },
          }
        : {}),
      dcs: {
        ttl: pg.ttl,
        loop_wait: pg.loopWait,
        retry_timeout: pg.retryTimeout,
        maximum_lag_on_failover: pg.maximumLagOnFailover,
        synchronous_mode: pg.synchronousMode,
        synchronous_mode_strict: pg.synchronousModeStrict,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            wal_level: 'replica',
            hot_standby: 'on',
            wal_log_hints: 'on',
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_keep_size: '128MB',
            password_encryption: 'scram-sha-256',
            ...pg.parameters,
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums', { 'auth-local': 'scram-sha-256' }, { 'auth-host': 'scram-sha-256' }],
      // Patroni 3.0's validator insists on it; the same rules as postgresql.pg_hba, which is what applies.
      pg_hba: pgHba,
    },
    postgresql: {
      listen: postgresAddr,
      connect_address: postgresAddr,
      // A custom bootstrap lets only the member's own address in (trust, for its post-bootstrap work), and on
      // loopback every connection comes from 127.0.0.1: Patroni reaches its PostgreSQL over the socket then.
      ...(restore ? { use_unix_socket: true } : {}),
      data_dir: files.dataDir,
      bin_dir: files.binDir,
      pgpass: files.pgpass,
      authentication: {
        superuser: { username: USERS.superuser, password: secrets.superuserPassword },
        replication: { username: USERS.replication, password: secrets.replicationPassword, sslmode: 'verify-ca', sslrootcert: files.tls.ca },
        rewind: { username: USERS.rewind, password: secrets.rewindPassword, sslmode: 'verify-ca', sslrootcert: files.tls.ca },
      },
      parameters: {
        unix_socket_directories: files.socketDir,
        ssl: 'on',
        ssl_cert_file: files.tls.cert,
        ssl_key_file: files.tls.key,
        ssl_ca_file: files.tls.ca,
        password_encryption: 'scram-sha-256',
        ...(archive ? { archive_mode: 'on', archive_command: archive.archiveCommand } : {}),
      },
      ...(archive ? { recovery_conf: { restore_command: archive.restoreCommand } } : {}),
      // A new replica (and `db reinit`) from the backup repository when a backup is recent, else from the
      // leader; a failed restore leaves an empty data directory (Patroni cleans it) for basebackup.
      ...(archive?.replicaCommand
        ? { create_replica_methods: ['pgbackrest', 'basebackup'], pgbackrest: { command: archive.replicaCommand, no_params: true } }
        : {}),
      pg_hba: pgHba,
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  });
}
