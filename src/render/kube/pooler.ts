// The pooler on the platform (pooler.enabled): PgBouncer pods behind the Service postgres-pooler, each
// sending every database to the Service postgres-primary (which the router keeps on the leader) over TLS
// verified against the cluster CA. `gardenos db switchover` pauses every one of them through its admin
// console (a Unix socket inside the pod, reached by exec), switches, checks from inside each pod that a new
// connection through postgres-primary lands on the new leader, and resumes — clients wait, none fails.
import { createHash } from 'node:crypto';
import type { Config } from '../../config/schema.ts';
import { defaultPostgresImage } from '../../config/version.ts';
import { POOLER_SERVICE, PRIMARY_ROUTE } from '../../names.ts';
import { USERS } from '../files.ts';
import { renderPgbouncerIni } from '../pgbouncer.ts';
import { labelsFor, type Manifest } from './manifest.ts';
import { SECRET_NAMES } from './names.ts';

const CONFIG_DIR = '/etc/pgbouncer';
/** Beside the config, not under it: a mount inside a read-only volume cannot be made. */
const SECRET_DIR = '/etc/pgbouncer-secret';
/** The admin console's socket directory: `db switchover` reaches it by exec, as psql's PGHOST. */
export const POOLER_SOCKET_DIR = '/var/run/pgbouncer';
/** The container `db switchover` execs into. */
export const POOLER_CONTAINER = 'pgbouncer';
/** PgBouncer refuses to run as root: the postgres user of GardenOS's image (images/postgres/install.sh). */
const POOLER_UID = 999;
/** The pooler's pods' labels, which its Service and `db switchover` select them by. */
export const poolerPodLabels = () => labelsFor(POOLER_SERVICE);
export const poolerPodSelector = () =>
  Object.entries(poolerPodLabels())
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** The image: `pooler.image`, else GardenOS's PostgreSQL image (which carries Debian's pgbouncer and psql). */
export function poolerImage(config: Config): string {
  const pg = config.postgres;
  return config.pooler.image ?? (pg.flavor === 'gardenos' ? pg.image : defaultPostgresImage('gardenos', pg.version));
}

/** Where the Service postgres-primary is, as the pods resolve it (cluster DNS); its certificate names it so. */
export const primaryServiceHost = (config: Config) => `${PRIMARY_ROUTE}.${config.namespaces.database}.svc`;

/** pgbouncer.ini for the pods: no secret in it (the auth file and the key are in the Secret postgres-pooler). */
export function poolerIni(config: Config): string {
  return renderPgbouncerIni({
    config,
    listen: '*',
    server: { host: primaryServiceHost(config), port: config.postgres.port },
    files: {
      socketDir: POOLER_SOCKET_DIR,
      userlist: `${SECRET_DIR}/userlist.txt`,
      tls: { ca: `${SECRET_DIR}/ca.crt`, cert: `${SECRET_DIR}/tls.crt`, key: `${SECRET_DIR}/tls.key` },
    },
    renderedBy: 'gardenos up',
  });
}

export function poolerManifests(config: Config): Manifest[] {
  if (!config.pooler.enabled) return [];
  const ns = config.namespaces.database;
  const p = config.pooler;
  const selector = poolerPodLabels();
  const labels = selector;
  const ini = poolerIni(config);
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: POOLER_SERVICE, namespace: ns, labels }, data: { 'pgbouncer.ini': ini } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: POOLER_SERVICE, namespace: ns, labels },
      spec: { selector, ports: [{ name: 'postgresql', port: p.port, targetPort: 'pgbouncer' }] },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: POOLER_SERVICE, namespace: ns, labels },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: POOLER_SERVICE, namespace: ns, labels },
      spec: {
        replicas: p.replicas,
        selector: { matchLabels: selector },
        // A new pod is ready before an old one goes: the pooler never has fewer pods than asked for.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          // A changed pgbouncer.ini rolls the pods (PgBouncer reads it at start).
          metadata: { labels, annotations: { 'gardenos.dev/config': createHash('sha256').update(ini).digest('hex').slice(0, 12) } },
          spec: {
            securityContext: { fsGroup: POOLER_UID, runAsNonRoot: true },
            affinity: {
              // One per node where the nodes allow it, never blocking a pod when they do not.
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } },
                ],
              },
            },
            containers: [
              {
                name: POOLER_CONTAINER,
                image: poolerImage(config),
                command: ['pgbouncer', `${CONFIG_DIR}/pgbouncer.ini`],
                // What `db switchover`'s psql (run by exec) connects with: the admin console, as the superuser.
                env: [
                  { name: 'PGHOST', value: POOLER_SOCKET_DIR },
                  { name: 'PGPORT', value: String(p.port) },
                  { name: 'PGUSER', value: USERS.superuser },
                  { name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: SECRET_NAMES.pooler, key: 'admin-password' } } },
                ],
                ports: [{ name: 'pgbouncer', containerPort: p.port }],
                readinessProbe: { tcpSocket: { port: 'pgbouncer' }, periodSeconds: 5, failureThreshold: 2 },
                livenessProbe: { tcpSocket: { port: 'pgbouncer' }, periodSeconds: 10, failureThreshold: 6 },
                securityContext: {
                  runAsUser: POOLER_UID,
                  runAsGroup: POOLER_UID,
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '256Mi' } },
                volumeMounts: [
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'secret', mountPath: SECRET_DIR, readOnly: true },
                  { name: 'run', mountPath: POOLER_SOCKET_DIR },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: POOLER_SERVICE } },
              { name: 'secret', secret: { secretName: SECRET_NAMES.pooler, defaultMode: 0o440 } },
              { name: 'run', emptyDir: { medium: 'Memory' } },
            ],
          },
        },
      },
    },
  ];
}
