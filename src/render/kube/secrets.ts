// The Secrets the manifests reference by name, and — only for `render --with-secrets` and `gardenos up` —
// their contents: Patroni's configuration and TLS, the router's etcd client certificate, Supabase's keys and
// database URLs, gateway-auth's keys, the ingress hosts' certificates from GardenOS's CA, and (monitoring)
// Prometheus's etcd client certificate, HAProxy's stats password and postgres-exporter's; (pooler) PgBouncer's
// auth file and TLS pair.
import type { S3Credentials } from '../../config/credentials.ts';
import { hostTls, type Config } from '../../config/schema.ts';
import { GardenError } from '../../errors.ts';
import type { PemPair } from '../../pki/certs.ts';
import type { PlatformSecrets } from '../../platform/secrets.ts';
import { renderPatroniConfig, type PatroniRenderInput } from '../patroni.ts';
import { archiveCommand, restoreCommand } from '../pgbackrest.ts';
import { memberPgbackrestConfig, PGBACKREST_CONFIG, REPLICA_SCRIPT, repoPgbackrestConfig } from './backups.ts';
import { renderPgbouncerUserlist } from '../pgbouncer.ts';
import { productionTopology } from '../topology.ts';
import { hostNamespaces, tlsSecretName } from './ingress.ts';
import { PART_OF, type Manifest } from './manifest.ts';
import { PGDATA, POSTGRES_SOCKET_DIR, SECRET_NAMES } from './names.ts';

/** HS256 secrets as a JSON Web Key Set (PostgREST's jwt-secret accepts one): each secret's UTF-8 bytes, as GoTrue signs with them. */
export const jwks = (secrets: string[]) =>
  JSON.stringify({ keys: secrets.map((k) => ({ kty: 'oct', alg: 'HS256', k: Buffer.from(k, 'utf8').toString('base64url') })) });

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function monitorPassword(secrets: PlatformSecrets): string {
  if (!secrets.monitorPassword)
    throw new GardenError('CONFIG_INVALID', "the secrets have no password for postgres-exporter's role (made before monitoring existed)", {
      hint: '`gardenos pki` adds it and keeps every other secret',
    });
  return secrets.monitorPassword;
}

export interface SecretInputs {
  secrets: PlatformSecrets;
  ca: string;
  postgresServer: PemPair;
  routerClient: PemPair;
  /** Certificates of the ingress hosts with tls: internal, by host. */
  ingressCerts: Record<string, PemPair>;
  /** Prometheus's etcd client certificate (monitoring.enabled). */
  prometheusClient?: PemPair;
  /** The pooler's certificate for its clients (pooler.enabled). */
  poolerServer?: PemPair;
  /** The backup repository's certificate: its TLS server's, and its client identity towards the members (backups.enabled). */
  backupRepo?: PemPair;
  /** backups.repository.s3: the access key from its credentials file, and the endpoint's CA (caFile) when one is named. */
  backupS3?: { key: S3Credentials; ca?: string };
}

function cipherPass(config: Config, secrets: PlatformSecrets): string | undefined {
  if (config.backups.encryption === 'none') return undefined;
  if (!secrets.backupCipherPass)
    throw new GardenError('CONFIG_INVALID', "the secrets have no passphrase for the backup repository's encryption (made before backups existed)", {
      hint: '`gardenos pki` adds it and keeps every other secret',
    });
  return secrets.backupCipherPass;
}

/**
 * The members' patroni.yml (the Secret postgres-patroni): one file for every pod, whose name and addresses come from
 * its environment (PATRONI_NAME, PATRONI_*_LISTEN / CONNECT_ADDRESS). With `restore`, the bootstrap from a backup that
 * `db restore --to` puts there while it rebuilds the cluster.
 */
export function platformPatroniConfig(config: Config, secrets: PlatformSecrets, restore?: PatroniRenderInput['restore']): string {
  const tlsDir = '/etc/patroni/tls';
  return renderPatroniConfig({
    config,
    topology: productionTopology(config),
    member: { name: 'set-by-PATRONI_NAME', address: '0.0.0.0' },
    files: {
      dataDir: PGDATA,
      binDir: `/usr/lib/postgresql/${config.postgres.version}/bin`,
      socketDir: POSTGRES_SOCKET_DIR,
      pgpass: '/tmp/pgpass',
      tls: { ca: `${tlsDir}/ca.crt`, cert: `${tlsDir}/tls.crt`, key: `${tlsDir}/tls.key` },
    },
    secrets,
    // backups.enabled: WAL to the repository pod from whichever member is primary; a standby reads what it lacks from it.
    ...(config.backups.enabled
      ? {
          archive: {
            archiveCommand: archiveCommand(PGBACKREST_CONFIG, config, PGDATA),
            restoreCommand: restoreCommand(PGBACKREST_CONFIG, config, PGDATA),
            // A new replica from the repository when its newest backup is recent and on the leader's timeline.
            ...(config.backups.replicaFromBackupMaxAgeHours > 0 ? { replicaCommand: `python3 ${REPLICA_SCRIPT}` } : {}),
          },
        }
      : {}),
    ...(restore ? { restore } : {}),
  });
}

/** The Secrets the manifests reference, with their contents: only `render --with-secrets` and `gardenos up` produce these. */
export function secretManifests(config: Config, input: SecretInputs): Manifest[] {
  const { secrets } = input;
  const secret = (name: string, ns: string, data: Record<string, string>): Manifest => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, labels: { ...PART_OF } },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  });
  const patroni = platformPatroniConfig(config, secrets);
  const ns = config.namespaces;
  const pgHost = `postgres-primary.${ns.database}.svc`;
  const url = (user: string, password: string) =>
    `postgres://${user}:${encodeURIComponent(password)}@${pgHost}:${config.postgres.port}/postgres?sslmode=require`;
  const out = [
    // superuser-password: the pgBackRest sidecar's PGPASSWORD (a backup's queries go through the member's socket).
    secret(SECRET_NAMES.postgresConfig, ns.database, {
      'patroni.yml': patroni,
      ...(config.backups.enabled ? { 'superuser-password': secrets.superuserPassword } : {}),
    }),
    secret(SECRET_NAMES.postgresTls, ns.database, { 'ca.crt': input.ca, 'tls.crt': input.postgresServer.cert, 'tls.key': input.postgresServer.key }),
    secret(SECRET_NAMES.routerEtcd, ns.database, { 'ca.crt': input.ca, 'tls.crt': input.routerClient.cert, 'tls.key': input.routerClient.key }),
    ...(config.monitoring.enabled && input.prometheusClient
      ? [
          secret(SECRET_NAMES.prometheusEtcd, ns.platform, {
            'ca.crt': input.ca,
            'tls.crt': input.prometheusClient.cert,
            'tls.key': input.prometheusClient.key,
          }),
          secret(SECRET_NAMES.haproxyStats, ns.platform, { password: secrets.statsPassword }),
          // postgres-exporter's login (gardenos_monitor, pg_monitor), read by the sidecar beside each member.
          secret(SECRET_NAMES.postgresExporter, ns.database, { password: monitorPassword(secrets) }),
        ]
      : []),
  ];
  if (config.pooler.enabled) {
    if (!input.poolerServer)
      throw new GardenError('CONFIG_NOT_FOUND', 'no certificate for the pooler (pooler.enabled was turned on after `gardenos pki` ran)', {
        hint: '`gardenos pki` creates what is missing and keeps the rest',
      });
    // The auth file (the superuser, whose password PgBouncer needs to speak SCRAM to both sides, and the exporter's
    // stats user), the admin console's password for `db switchover`'s psql, and the pooler's own TLS pair.
    out.push(
      secret(SECRET_NAMES.pooler, ns.database, {
        'userlist.txt': renderPgbouncerUserlist(secrets),
        'admin-password': secrets.superuserPassword,
        'ca.crt': input.ca,
        'tls.crt': input.poolerServer.cert,
        'tls.key': input.poolerServer.key,
      }),
    );
  }
  if (config.backups.enabled) {
    if (!input.backupRepo)
      throw new GardenError('CONFIG_NOT_FOUND', 'no certificate for the backup repository (backups.enabled was turned on after `gardenos pki` ran)', {
        hint: '`gardenos pki` creates what is missing and keeps the rest',
      });
    const pass = cipherPass(config, secrets);
    const s3 = config.backups.repository.s3;
    if (s3 && (!input.backupS3 || (s3.caFile && !input.backupS3.ca)))
      throw new GardenError('CONFIG_NOT_FOUND', 'the S3 repository needs its access key (and the CA its caFile names) to render the Secrets');
    // Members mount member.conf only; the repository's pods its conf (with the S3 key, if any) and TLS pair. Both
    // confs hold the passphrase: a member encrypts what it pushes.
    out.push(
      secret(SECRET_NAMES.pgbackrest, ns.database, {
        'member.conf': memberPgbackrestConfig(config, PGDATA, POSTGRES_SOCKET_DIR, pass),
        'repo.conf': repoPgbackrestConfig(config, PGDATA, POSTGRES_SOCKET_DIR, pass, input.backupS3?.key),
        'ca.crt': input.ca,
        'tls.crt': input.backupRepo.cert,
        'tls.key': input.backupRepo.key,
        ...(input.backupS3?.ca ? { 's3-ca.crt': input.backupS3.ca } : {}),
      }),
    );
  }
  // tls: internal — the host's certificate from GardenOS's CA, in every namespace whose Ingress names it.
  for (const [host, namespaces] of hostNamespaces(config)) {
    const h = config.ingress.hosts.find((x) => x.name === host);
    const pair = input.ingressCerts[host];
    if (!h || hostTls(h) !== 'internal' || !pair) continue;
    for (const ns of [...namespaces].sort())
      out.push({ ...secret(tlsSecretName(h), ns, { 'tls.crt': pair.cert, 'tls.key': pair.key }), type: 'kubernetes.io/tls' });
  }
  if (config.supabase.enabled) {
    const s = secrets.supabase;
    out.push(
      // jwt-secret: what GoTrue signs with; jwks: what PostgREST verifies with (during a rotation, the previous secret too).
      secret(SECRET_NAMES.supabaseJwt, ns.supabase, {
        'jwt-secret': s.jwtSecret,
        jwks: jwks([s.jwtSecret, ...(s.previous ? [s.previous.jwtSecret] : [])]),
        'anon-key': s.anonKey,
        'service-role-key': s.serviceRoleKey,
      }),
      secret(SECRET_NAMES.supabaseDb, ns.supabase, {
        'auth-url': url('supabase_auth_admin', s.authAdminPassword),
        'rest-url': url('authenticator', s.authenticatorPassword),
        'storage-url': url('supabase_storage_admin', s.storageAdminPassword),
      }),
      // The keys gateway-auth checks, beside Traefik (its pod's environment reads them from its own namespace).
      secret(SECRET_NAMES.gateway, ns.platform, {
        'anon-key': s.anonKey,
        'service-role-key': s.serviceRoleKey,
        ...(s.previous ? { 'previous-anon-key': s.previous.anonKey, 'previous-service-role-key': s.previous.serviceRoleKey } : {}),
      }),
    );
  }
  return out;
}
