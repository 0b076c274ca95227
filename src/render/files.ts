// Where each daemon finds its data, sockets and certificates. Production and
// the local profile differ only in these paths (and in addresses and ports).
import { z } from 'zod';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface EtcdFiles {
  dataDir: string;
  tls: TlsFiles;
}

export interface PatroniFiles {
  dataDir: string;
  binDir: string;
  socketDir: string;
  pgpass: string;
  /** Server certificate for PostgreSQL and the REST API; also Patroni's etcd client certificate. */
  tls: TlsFiles;
}

export interface HaproxyFiles {
  adminSocket: string;
  ca: string;
}

const secret = z.string().min(1);
/** ClusterSecrets as stored: every field a non-empty string; unknown fields kept (a newer GardenOS may add some). */
export const clusterSecretsSchema = z.looseObject({
  superuserPassword: secret,
  replicationPassword: secret,
  rewindPassword: secret,
  restApiPassword: secret,
  statsPassword: secret,
  etcdClusterToken: secret,
  backupCipherPass: secret.optional(),
  monitorPassword: secret.optional(),
});

export interface ClusterSecrets {
  superuserPassword: string;
  replicationPassword: string;
  rewindPassword: string;
  /** Basic auth for Patroni's unsafe REST endpoints (switchover, restart, config). */
  restApiPassword: string;
  statsPassword: string;
  /** etcd's initial-cluster-token: unique per cluster so two clusters never merge by mistake. */
  etcdClusterToken: string;
  /** The backup repository's encryption passphrase (made the first time backups are enabled, then never changed). */
  backupCipherPass?: string;
  /** postgres-exporter's role (pg_monitor), made the first time monitoring is enabled. */
  monitorPassword?: string;
}

export const USERS = {
  superuser: 'postgres',
  replication: 'replicator',
  rewind: 'rewind_user',
  restApi: 'patroni',
  /** postgres-exporter's login: pg_monitor's read-only statistics, nothing else. */
  monitor: 'gardenos_monitor',
} as const;
