// PgBouncer in front of the primary route: clients connect to it with TLS, it
// connects to the primary route — HAProxy's primary port locally, the Service
// postgres-primary on the platform, both kept on the leader by the router — with
// TLS verified against the cluster CA. Its admin console (PAUSE, RESUME, SHOW) is
// on a Unix socket only. Pure: config and paths in, text out.
import type { Config } from '../config/schema.ts';
import { USERS, type ClusterSecrets, type TlsFiles } from './files.ts';

export interface PoolerFiles {
  /** Directory of the admin console's Unix socket (.s.PGSQL.<port>). */
  socketDir: string;
  userlist: string;
  /**
   * Written while GardenOS holds the pooler paused (a switchover), removed after RESUME. PgBouncer 1.18's SHOW
   * lists do not show a global PAUSE (SHOW STATE came in 1.21): this file is how `status`, the router and
   * `up` know of one.
   */
  pauseMarker: string;
  /** Its certificate for clients (names the load balancer's address) and the CA it checks servers with. */
  tls: TlsFiles;
}

export interface PgbouncerRenderInput {
  config: Config;
  /** The address it listens on (the local load balancer's; on the platform, every address of its pod). */
  listen: string;
  /** The primary route it sends every database to. */
  server: { host: string; port: number };
  /** The socket directory, the auth file and the TLS files (the pause marker is the local profile's alone). */
  files: Omit<PoolerFiles, 'pauseMarker'>;
  /** Which command rewrites the file (its first line says so). */
  renderedBy: string;
}

export function renderPgbouncerIni({ config, listen, server, files, renderedBy }: PgbouncerRenderInput): string {
  const p = config.pooler;
  return [
    `; Rendered by GardenOS; edits are overwritten by \`${renderedBy}\`.`,
    '[databases]',
    // Every database, through the primary route: wherever the router points it, the pooler follows.
    `* = host=${server.host} port=${server.port}`,
    '',
    '[pgbouncer]',
    `listen_addr = ${listen}`,
    `listen_port = ${p.port}`,
    `unix_socket_dir = ${files.socketDir}`,
    'auth_type = scram-sha-256',
    `auth_file = ${files.userlist}`,
    `admin_users = ${USERS.superuser}`,
    // Read-only SHOW commands for the exporter (monitoring.enabled), never PAUSE or RESUME.
    `stats_users = ${USERS.monitor}`,
    `pool_mode = ${p.poolMode}`,
    `max_client_conn = ${p.maxClientConnections}`,
    `default_pool_size = ${p.defaultPoolSize}`,
    // Drivers send these at start-up; PgBouncer does not track them per pool.
    'ignore_startup_parameters = extra_float_digits,options',
    'client_tls_sslmode = require',
    `client_tls_cert_file = ${files.tls.cert}`,
    `client_tls_key_file = ${files.tls.key}`,
    `client_tls_ca_file = ${files.tls.ca}`,
    'server_tls_sslmode = verify-full',
    `server_tls_ca_file = ${files.tls.ca}`,
    // A server that vanishes mid-switchover is noticed quickly; new server connections give up fast and are retried.
    'server_connect_timeout = 3',
    'server_login_retry = 1',
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
}

/** The auth file: PgBouncer needs the password itself to speak SCRAM to both sides; the exporter's stats user beside it. */
export function renderPgbouncerUserlist(secrets: Pick<ClusterSecrets, 'superuserPassword' | 'monitorPassword'>): string {
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const monitor = secrets.monitorPassword ? `${quote(USERS.monitor)} ${quote(secrets.monitorPassword)}\n` : '';
  return `${quote(USERS.superuser)} ${quote(secrets.superuserPassword)}\n${monitor}`;
}
