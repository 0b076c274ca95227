// The one typed model of a GardenOS platform. Every section has defaults, so
// the smallest valid file is `cluster: {name: x}` plus nodes; unknown keys are
// errors (strict objects) so a typo never silently does nothing.
import { isIP } from 'node:net';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

import { API_VERSION, KUBERNETES_VERSION, LOCAL_PATH_PROVISIONER_VERSION, TRAEFIK_VERSION, defaultPostgresImage } from './version.ts';

export { API_VERSION };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/;

const dnsLabel = z.string().max(40).regex(DNS_LABEL, 'must be lower-case letters, digits and "-", starting and ending with a letter or digit');

/** A host name's last label is never all digits (RFC 3696 §2): "300.1.2.3" is a broken address, not a name. */
const isHostName = (v: string) => HOSTNAME.test(v) && !/(^|\.)\d+$/.test(v);
const address = z.string().refine((v) => isIP(v) !== 0 || isHostName(v), 'must be an IPv4 or IPv6 address or a host name');

const ipAddress = z.string().refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address');

export function isCidr(v: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(v);
  if (!m) return false;
  const family = isIP(m[1]!);
  const bits = Number(m[2]);
  return family === 4 ? bits <= 32 : family === 6 ? bits <= 128 : false;
}
const cidr = z.string().refine(isCidr, 'must be a CIDR block such as 10.42.0.0/16');

const port = z.number().int().min(1).max(65535);
/** A cron expression cron-parser accepts: five fields, or six with seconds first. */
function isCron(text: string): boolean {
  const fields = text.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) return false;
  try {
    CronExpressionParser.parse(text);
    return true;
  } catch {
    return false;
  }
}
const cron = z
  .string()
  .refine(isCron, 'must be a cron expression such as "0 2 * * 0" (minute hour day-of-month month day-of-week; a sixth, leading field is seconds)');
const absolutePath = z.string().regex(/^\/[^\s]*[^/\s]$/, 'must be an absolute file path such as /etc/gardenos/s3.json');
const quantity = z.string().regex(/^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$/, 'must be a Kubernetes quantity such as 20Gi');
const image = z
  .string()
  .min(1, 'an image is required')
  .regex(/^[^\s]+$/, 'must be an image reference such as ghcr.io/org/app:1.0');
const k8sName = z.string().max(63).regex(DNS_LABEL, 'must be a Kubernetes name: lower-case letters, digits and "-"');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

export const ROLES = ['etcd', 'k3s-server', 'postgres', 'haproxy'] as const;
export type Role = (typeof ROLES)[number];

const node = z.strictObject({
  name: dnsLabel,
  address: z.strictObject({
    public: address,
    private: address,
  }),
  ssh: z
    .strictObject({
      user: z.string().min(1).default('root'),
      port: port.default(22),
      keyPath: z.string().optional(),
      /** A jump host to reach this node through (OpenSSH's ProxyJump), with its own user, port and key. */
      bastion: z
        .strictObject({
          host: address,
          port: port.default(22),
          user: z.string().min(1).default('root'),
          keyPath: z.string().optional(),
        })
        .optional(),
    })
    .prefault({}),
  roles: z
    .array(z.enum(ROLES))
    .min(1)
    .default([...ROLES]),
});

const etcd = z.strictObject({
  clientPort: port.default(2379),
  peerPort: port.default(2380),
  dataDir: z.string().startsWith('/').default('/var/lib/etcd'),
  heartbeatIntervalMs: z.number().int().min(10).default(100),
  electionTimeoutMs: z.number().int().min(100).default(1000),
  snapshotCount: z.number().int().min(1000).default(10000),
});

const k3s = z.strictObject({
  version: z
    .string()
    .regex(/^v\d+\.\d+\.\d+\+k3s\d+$/, `must be a K3s release such as v${KUBERNETES_VERSION}+k3s1`)
    .default(`v${KUBERNETES_VERSION}+k3s1`),
  /** Path of a file holding the shared server token; generated and kept in the secrets directory when absent. */
  tokenFile: z.string().optional(),
  clusterCidr: cidr.default('10.42.0.0/16'),
  serviceCidr: cidr.default('10.43.0.0/16'),
  clusterDns: ipAddress.default('10.43.0.10'),
  disable: z.array(z.enum(['traefik', 'servicelb', 'local-storage', 'metrics-server', 'coredns'])).default(['traefik', 'servicelb']),
  /** Hybrid nodes (the journal's design): servers also run workloads, so no control-plane taint. */
  serversRunWorkloads: z.boolean().default(true),
  secretsEncryption: z.boolean().default(true),
  apiPort: port.default(6443),
});

const haproxy = z.strictObject({
  /** The address clients use for the K3s API and PostgreSQL; defaults to the first haproxy node's private address. */
  address: address.optional(),
  ports: z
    .strictObject({
      kubeApi: port.default(7443),
      primary: port.default(5000),
      replicas: port.default(5001),
      stats: port.default(8404),
    })
    .prefault({}),
  statsUser: z.string().min(1).default('admin'),
  /** Patroni-style HTTP health checks: a backend is down after `fall` failed checks `checkIntervalMs` apart. */
  checkIntervalMs: z.number().int().min(100).default(3000),
  fall: z.number().int().min(1).default(3),
  rise: z.number().int().min(1).default(2),
});

const pgParamValue = z.union([z.string(), z.number(), z.boolean()]);

const postgres = z
  .strictObject({
    version: z.union([z.literal(15), z.literal(16), z.literal(17)]).default(15),
    scope: dnsLabel.default('gardenos'),
    namespace: z
      .string()
      .regex(/^\/([^/]+\/)*$/, 'must start and end with "/", such as /service/')
      .default('/service/'),
    port: port.default(5432),
    patroniPort: port.default(8008),
    // Patroni >= 3.2 raises a smaller ttl or retry_timeout to these floors without a word, so a
    // config below them would promise failover timing that never happens: refused here, at the field.
    ttl: z.number().int().min(20, 'Patroni (>= 3.2) enforces ttl >= 20 seconds').default(30),
    loopWait: z.number().int().min(1, 'Patroni enforces loop_wait >= 1 second').default(10),
    retryTimeout: z.number().int().min(3, 'Patroni (>= 3.2) enforces retry_timeout >= 3 seconds').default(10),
    synchronousMode: z.boolean().default(true),
    synchronousModeStrict: z.boolean().default(false),
    maximumLagOnFailover: z.number().int().min(0).default(1048576),
    storage: quantity.default('20Gi'),
    /**
     * What the StatefulSet runs. gardenos: GardenOS's image (images/postgres: Debian's PostgreSQL and
     * Patroni 4, the packages `gardenos local` runs); spilo: Zalando's Spilo. Both run the same rendered
     * patroni.yml; the image defaults to the flavor's image for `version`.
     */
    flavor: z.enum(['gardenos', 'spilo']).default('gardenos'),
    image: image.optional(),
    parameters: z.record(z.string().regex(/^[a-z_.]+$/, 'must be a PostgreSQL parameter name'), pgParamValue).default({}),
  })
  .transform((pg) => ({ ...pg, image: pg.image ?? defaultPostgresImage(pg.flavor, pg.version) }));

/**
 * Volumes when K3s's own local-storage is disabled: GardenOS renders Rancher's local-path
 * provisioner (StorageClass local-path) with these images, keeping volumes under `path` on each node.
 */
const storage = z.strictObject({
  path: z
    .string()
    .regex(/^\/[^\s]*[^/\s]$/, 'must be an absolute directory path such as /var/lib/gardenos/volumes')
    .default('/var/lib/gardenos/volumes'),
  provisionerImage: image.default(`rancher/local-path-provisioner:${LOCAL_PATH_PROVISIONER_VERSION}`),
  /** The provisioner's helper pods (make and remove a volume's directory): sh, mkdir, chmod, rm. */
  helperImage: image.default('busybox:1.36'),
});

const supabase = z.strictObject({
  enabled: z.boolean().default(true),
  jwtExpirySeconds: z.number().int().min(60).default(3600),
  siteUrl: z.url().optional(),
  storage: z
    .strictObject({
      backend: z.enum(['file', 's3']).default('file'),
      size: quantity.default('10Gi'),
      s3: z.strictObject({ bucket: z.string().min(1), region: z.string().min(1), endpoint: z.url().optional() }).optional(),
    })
    .prefault({}),
  images: z
    .strictObject({
      auth: image.default('supabase/gotrue:v2.164.0'),
      rest: image.default('postgrest/postgrest:v12.2.3'),
      storage: image.default('supabase/storage-api:v1.11.13'),
    })
    .prefault({}),
});

const route = z.strictObject({
  host: address,
  path: z
    .string()
    .regex(/^\/[^\s]*$/, 'must be an absolute path such as /api')
    .default('/'),
});

const app = z.strictObject({
  name: k8sName,
  image,
  replicas: z.number().int().min(0).default(2),
  port: port.default(8000),
  /** The liveness probe's path: answers while the process works. */
  healthPath: z.string().startsWith('/').default('/health'),
  /** The readiness probe's path: answers 200 only when the app can serve (its database answers); default healthPath. */
  readyPath: z.string().startsWith('/').optional(),
  env: z.record(envName, z.string()).default({}),
  /** Names of keys in the app's Kubernetes Secret, exposed as environment variables. */
  secrets: z.array(envName).default([]),
  routes: z.array(route).default([]),
  resources: z
    .strictObject({
      cpu: z.string().default('100m'),
      memory: quantity.default('256Mi'),
    })
    .prefault({}),
});

/**
 * A host the ingress serves, and where its certificate comes from:
 * internal  GardenOS's CA issues it (`gardenos pki`), for private hosts — clients trust pki/ca.crt;
 * acme      Let's Encrypt (or ingress.acme.server) through cert-manager's HTTP-01 solver, for public hosts;
 * secret    tlsSecret names a kubernetes.io/tls Secret you manage, in each namespace that routes the host;
 * none      plain HTTP only.
 * Default: secret when tlsSecret is given, otherwise internal.
 */
const ingressHost = z.strictObject({
  name: address,
  tls: z.enum(['internal', 'acme', 'secret', 'none']).optional(),
  tlsSecret: k8sName.optional(),
});

const ingress = z.strictObject({
  /** traefik: GardenOS installs Traefik (a DaemonSet on the nodes' HTTP/HTTPS ports); none: bring your own controller for className. */
  controller: z.enum(['traefik', 'none']).default('traefik'),
  className: k8sName.default('traefik'),
  image: image.default(`traefik:${TRAEFIK_VERSION}`),
  httpPort: port.default(80),
  httpsPort: port.default(443),
  /** For hosts with tls: acme — the ACME account's e-mail (expiry notices) and the directory. */
  acme: z
    .strictObject({
      email: z.email(),
      server: z.url().default('https://acme-v02.api.letsencrypt.org/directory'),
    })
    .optional(),
  hosts: z.array(ingressHost).default([]),
});

const namespaces = z.strictObject({
  platform: k8sName.default('gardenos-system'),
  database: k8sName.default('database'),
  supabase: k8sName.default('supabase'),
  apps: k8sName.default('apps'),
});

const router = z.strictObject({
  replicaMaxLagBytes: z
    .number()
    .int()
    .min(0)
    .default(16 * 1024 * 1024),
  /** The router re-reads etcd and re-checks the leader this often even without a watch event. */
  recheckIntervalMs: z.number().int().min(100).default(2000),
  /** /healthz, /readyz, /metrics and /status. */
  port: port.default(8405),
  /**
   * A dead leader replaced in seconds rather than Patroni's ttl: when the leader's host refuses connections on
   * both its Patroni and PostgreSQL ports for confirmMs and the other members lost replication from it, the
   * router ends its leader lock (one conditional etcd transaction). Frozen or unreachable leaders wait for the ttl.
   */
  deadLeader: z
    .strictObject({
      enabled: z.boolean().default(true),
      confirmMs: z.number().int().min(500, 'confirmMs below 500 ms would judge a Patroni that is restarting').default(1000),
    })
    .prefault({}),
  image: image.default('ghcr.io/gardenos/router:0.1.0'),
});

/**
 * PgBouncer in front of the primary route: clients keep their connections through a planned
 * switchover (`db switchover` pauses it, switches, waits for the route to move, resumes).
 */
const pooler = z.strictObject({
  enabled: z.boolean().default(false),
  port: port.default(6432),
  /** transaction: a server connection per transaction, so a pause waits only for transactions in flight. */
  poolMode: z.enum(['transaction', 'session']).default('transaction'),
  maxClientConnections: z.number().int().min(1).default(200),
  defaultPoolSize: z.number().int().min(1).default(20),
  /** On the platform: PgBouncer pods behind the Service postgres-pooler (spread over the nodes). */
  replicas: z.number().int().min(1).max(10).default(2),
  /** The platform's PgBouncer image (pgbouncer and psql in it); GardenOS's PostgreSQL image by default, which carries Debian's. */
  image: image.optional(),
});

/**
 * Prometheus watching every component (etcd over mTLS, Patroni, HAProxy, the router) with GardenOS's
 * alert rules for the journal's failures. Local profile: Debian's prometheus beside the cluster.
 */
const monitoring = z.strictObject({
  enabled: z.boolean().default(false),
  /** Prometheus's web and API port, on the load balancer's address. */
  port: port.default(9090),
  scrapeIntervalSeconds: z.number().int().min(1).max(300).default(5),
  retention: z
    .string()
    .regex(/^\d+(ms|s|m|h|d|w|y)$/, 'must be a Prometheus duration such as 15d')
    .default('15d'),
  /** A replica this far behind the primary's WAL raises GardenOSReplicationLag. */
  replicationLagAlertBytes: z
    .number()
    .int()
    .min(0)
    .default(64 * 1024 * 1024),
  /**
   * The exporters Prometheus scrapes beside the components' own metrics: Debian's postgres-exporter (as a
   * pg_monitor role of its own; the local profile runs one per member on consecutive ports from this one)
   * and node-exporter (filesystems, CPU, memory, and the backup scheduler's metrics file). The pooler's
   * pools and paused state come from the router, which reads PgBouncer's SHOW lists as a stats user.
   */
  exporterPorts: z.strictObject({ postgres: port.default(9187), node: port.default(9100) }).prefault({}),
  /** Alertmanager, which Prometheus sends firing alerts to; `webhookUrl` forwards them (chat, paging). */
  alertmanager: z
    .strictObject({
      port: port.default(9093),
      webhookUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    })
    .prefault({}),
  /** A filesystem holding GardenOS's data with less than this share free raises GardenOSVolumeFilling. */
  diskFreeAlertPercent: z.number().min(1).max(50).default(10),
  /** With backups on: no new backup for this long raises GardenOSBackupTooOld (a day's diff plus slack). */
  backupAlertAfterHours: z
    .number()
    .min(1)
    .max(24 * 60)
    .default(26),
  /** With backups on: no successful restore test for this long raises GardenOSRestoreTestTooOld (weekly full plus a day). */
  restoreTestAlertAfterDays: z.number().min(1).max(365).default(8),
  /** The platform: Prometheus's volume (local-path, like PostgreSQL's). */
  storage: quantity.default('20Gi'),
  /** The platform's images (the local profile runs Debian's packages). */
  images: z
    .strictObject({
      prometheus: image.default('quay.io/prometheus/prometheus:v2.53.4'),
      alertmanager: image.default('quay.io/prometheus/alertmanager:v0.27.0'),
      nodeExporter: image.default('quay.io/prometheus/node-exporter:v1.8.2'),
      /**
       * The sidecar beside each Patroni member. Unset: GardenOS's PostgreSQL image, which carries Debian's
       * prometheus-postgres-exporter (postgres.flavor gardenos), or the exporter's own image with Spilo's.
       */
      postgresExporter: image.optional(),
    })
    .prefault({}),
});

/**
 * Continuous archiving and base backups with pgBackRest: every member's archive_command pushes WAL to the
 * repository (only the primary's runs), base backups are taken from a standby where one is healthy, and
 * the repository is encrypted with a generated key. Point-in-time recovery and restore tests read it.
 */
const backups = z.strictObject({
  enabled: z.boolean().default(false),
  repository: z
    .strictObject({
      /** A directory (local profile: under the state directory when unset; hosts: /var/lib/pgbackrest). */
      path: z
        .string()
        .regex(/^\/[^\s]*[^/\s]$/, 'must be an absolute directory path such as /var/lib/pgbackrest')
        .optional(),
      /** The platform: the repository pod's volume (local-path, like PostgreSQL's): backups and the WAL they need. */
      storage: quantity.default('20Gi'),
      /**
       * An S3-compatible object store instead of a directory (pgBackRest's repo1-type s3, always over TLS). `path` is
       * then the prefix inside the bucket (default /<cluster.name>). The access key stays out of gardenos.yaml: a
       * JSON file { "accessKeyId": …, "secretAccessKey": … } that only its owner may read.
       */
      s3: z
        .strictObject({
          /** host or host:port of the S3 API, such as s3.eu-central-1.amazonaws.com or 10.0.0.5:8333. */
          endpoint: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?$/, 'must be a host or host:port such as s3.eu-central-1.amazonaws.com'),
          bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name: 3-63 lower-case letters, digits, "." and "-"'),
          region: z.string().min(1).default('us-east-1'),
          /** host: bucket.endpoint (AWS); path: endpoint/bucket (most self-hosted stores). */
          uriStyle: z.enum(['host', 'path']).default('host'),
          /** The CA that signed the endpoint's certificate, when it is not a public one. */
          caFile: absolutePath.optional(),
          credentialsFile: absolutePath,
        })
        .optional(),
    })
    .prefault({}),
  /**
   * The platform: the port of pgBackRest's TLS server, on each PostgreSQL node (the repository reaches the members
   * through it for backups) and on the repository pod (the members push WAL to it). Mutual TLS from GardenOS's CA.
   */
  serverPort: port.default(8432),
  /** Full backups kept (pgBackRest's repo1-retention-full); the WAL they need is kept with them. */
  retentionFull: z.number().int().min(1).max(100).default(2),
  /** Differential backups kept per full (repo1-retention-diff). */
  retentionDiff: z.number().int().min(1).max(100).default(6),
  /** aes-256-cbc with a generated passphrase among the secrets; `none` only where the storage itself is encrypted. */
  encryption: z.enum(['aes-256-cbc', 'none']).default('aes-256-cbc'),
  compression: z.enum(['zst', 'lz4', 'gz', 'none']).default('zst'),
  /**
   * A new replica, or one `db reinit` rebuilds, is restored from the newest backup when it is at most this
   * old (the rest of the WAL from the repository, then streaming), sparing the primary; else copied from the
   * leader. 0: always from the leader.
   */
  replicaFromBackupMaxAgeHours: z
    .number()
    .min(0)
    .max(24 * 30)
    .default(26),
  /** Seconds to wait for a WAL segment to reach the repository before a backup or a check calls archiving broken. */
  archiveTimeoutSeconds: z.number().int().min(5).max(3600).default(60),
  /**
   * When backups run without a person, as cron expressions in the machine's time zone (a sixth, leading
   * field is seconds, for the local profile only): the local profile's scheduler; on the platform a CronJob each
   * (Kubernetes schedules by the minute, in the controller's time zone unless `timeZone` names one).
   */
  schedule: z
    .strictObject({
      full: cron.default('0 2 * * 0'),
      diff: cron.default('0 2 * * 1-6'),
      incr: cron.optional(),
      /** A restore test (`db backup verify`) after each scheduled full backup. */
      verifyAfterFull: z.boolean().default(true),
      /** The platform's CronJobs: an IANA time zone such as Europe/Berlin (Kubernetes' timeZone); unset, the controller's. */
      timeZone: z
        .string()
        .regex(/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/, 'must be an IANA time zone such as Europe/Berlin or UTC')
        .optional(),
    })
    .prefault({}),
});

/** How `gardenos local` maps the platform onto one machine: addresses, ports and paths only. */
const local = z.strictObject({
  /** Member i (0-based) listens on <addressPrefix>.<firstHost + i>; the load balancer on <addressPrefix>.<firstHost - 1>. */
  addressPrefix: z
    .string()
    .regex(/^127\.\d{1,3}\.\d{1,3}$/, 'must be three octets inside 127.0.0.0/8, such as 127.0.0')
    .default('127.0.0'),
  firstHost: z.number().int().min(2).max(250).default(11),
  members: z.literal(3).default(3),
  /**
   * `gardenos local up --isolated` (root only): each member in its own network namespace on a bridge,
   * so that a member can be cut off (`local chaos partition`). Members get <isolatedPrefix>.<firstHost + i>,
   * the bridge (HAProxy and the router) <isolatedPrefix>.1; these addresses exist only on links GardenOS creates.
   */
  isolated: z.boolean().default(false),
  isolatedPrefix: z
    .string()
    .regex(/^10\.\d{1,3}\.\d{1,3}$/, 'must be three octets inside 10.0.0.0/8, such as 10.251.0')
    .default('10.251.0'),
  stateDir: z.string().optional(),
});

export const configSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION).default(API_VERSION),
  kind: z.literal('Platform').default('Platform'),
  cluster: z.strictObject({ name: dnsLabel }),
  nodes: z.array(node).default([]),
  etcd: etcd.prefault({}),
  k3s: k3s.prefault({}),
  haproxy: haproxy.prefault({}),
  postgres: postgres.prefault({}),
  storage: storage.prefault({}),
  supabase: supabase.prefault({}),
  apps: z.array(app).default([]),
  ingress: ingress.prefault({}),
  namespaces: namespaces.prefault({}),
  router: router.prefault({}),
  pooler: pooler.prefault({}),
  monitoring: monitoring.prefault({}),
  backups: backups.prefault({}),
  local: local.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type NodeConfig = Config['nodes'][number];
export type AppConfig = Config['apps'][number];
export type IngressHost = Config['ingress']['hosts'][number];

/** Where a host's certificate comes from (ingressHost's default applied). */
export const hostTls = (h: IngressHost) => h.tls ?? (h.tlsSecret ? 'secret' : 'internal');
