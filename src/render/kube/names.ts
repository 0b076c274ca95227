// Names the rendered Kubernetes objects and the code that acts on them share: the router's
// object names and labels, and the annotation that makes an object create-only for `gardenos up`.
// A leaf module, so the renderer, the apply client and the router all import it without
// importing each other.

export const ROUTER_NAME = 'gardenos-router';

/**
 * The labels of the Endpoints the router keeps. skip-mirror: the router writes the Service's
 * EndpointSlice itself; were the Endpoints mirrored too, kube-proxy would see a second slice that
 * lags behind the first, and for a moment two addresses behind postgres-primary.
 */
export const ENDPOINTS_LABELS = { 'app.kubernetes.io/managed-by': ROUTER_NAME, 'endpointslice.kubernetes.io/skip-mirror': 'true' } as const;

/** The annotation (and its value) that makes an object create-only for `gardenos up`. */
export const APPLY_ANNOTATION = 'gardenos.dev/apply';
export const CREATE_ONLY = 'create-only';

/**
 * The labels of the PostgreSQL members' pods, which the router selects them by: Spilo's convention
 * (application=spilo, cluster-name=<scope>), kept for every postgres.flavor so Zalando's tools and
 * dashboards that know it keep working.
 */
export const postgresPodLabels = (scope: string) => ({ application: 'spilo', 'cluster-name': scope }) as const;
export const postgresPodSelector = (scope: string) =>
  Object.entries(postgresPodLabels(scope))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** Where `gardenos gateway-auth` answers Traefik's forwardAuth, beside it in its pod (loopback only). */
export const GATEWAY_AUTH_PORT = 8081;

/** The Secret (in the ingress controller's namespace) holding the keys gateway-auth checks. */
export const GATEWAY_SECRET = 'supabase-gateway';

/** Names of the Secrets the manifests use; `render --with-secrets` writes them, `gardenos up` applies them. */
export const SECRET_NAMES = {
  postgresConfig: 'postgres-patroni',
  postgresTls: 'postgres-tls',
  routerEtcd: `${ROUTER_NAME}-etcd-client`,
  supabaseDb: 'supabase-db',
  supabaseJwt: 'supabase-jwt',
  gateway: GATEWAY_SECRET,
  /** Prometheus's etcd client certificate and HAProxy's stats password (monitoring.enabled). */
  prometheusEtcd: 'prometheus-etcd-client',
  haproxyStats: 'prometheus-haproxy-stats',
  /** postgres-exporter's password (monitoring.enabled), beside each Patroni member. */
  postgresExporter: 'postgres-exporter',
  /** The pooler's auth file, admin password and TLS pair (pooler.enabled). */
  pooler: 'postgres-pooler',
  /** pgBackRest's configurations (members' and repository's, each with the cipher passphrase) and the repository's TLS pair (backups.enabled). */
  pgbackrest: 'pgbackrest',
  app: (name: string) => `${name}-secrets`,
} as const;

/**
 * The pod-template annotation naming the revision of Supabase's JWT secrets the pods must run with (a short
 * hash, no secret): a rotation changes it, so `gardenos up` rolls the pods that read them from their environment.
 */
export const KEYS_REVISION_ANNOTATION = 'gardenos.dev/supabase-keys';

// The PostgreSQL pods' layout (Spilo's), shared by the StatefulSet, its Secrets, backups and `db restore --to`.
/** Where the volume is mounted, in both images (Spilo's layout). */
export const PGDATA_MOUNT = '/home/postgres/pgdata';
/** Patroni's data directory: a directory under the mount, so a file system's lost+found never stops initdb. */
export const PGDATA = `${PGDATA_MOUNT}/pgroot/data`;
/** The postgres user and group of each image: images/postgres/install.sh fixes 999; Spilo's is 101. */
export const POSTGRES_UID = { gardenos: 999, spilo: 101 } as const;
/** The members' Unix socket directory (an emptyDir shared with their sidecars). */
export const POSTGRES_SOCKET_DIR = '/var/run/postgresql';
