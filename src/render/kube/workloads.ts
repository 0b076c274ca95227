// Deployments with their Services: Supabase's auth (GoTrue), REST (PostgREST) and storage (storage-api),
// and the user's apps. Their gateway is the ingress (ingress.ts).
import type { AppConfig, Config } from '../../config/schema.ts';
import { labelsFor, type Manifest } from './manifest.ts';
import { KEYS_REVISION_ANNOTATION, SECRET_NAMES } from './names.ts';

interface DeploymentSpec {
  image: string;
  replicas: number;
  port: number;
  env: unknown[];
  probePath: string;
  /** The readiness probe's path when it differs from the liveness probe's (probePath). */
  readyPath?: string;
  /** A second port that answers the probes (PostgREST's admin server). */
  statusPort?: number;
  /**
   * The numeric user (and group, fsGroup) to run as: the kubelet cannot verify runAsNonRoot for an image
   * whose USER is a name (GoTrue's "supabase") or that runs as root (storage-api). Apps
   * run as their image's USER, which must then be numeric.
   */
  runAsUser?: number;
  args?: string[];
  volumes?: unknown[];
  volumeMounts?: unknown[];
  resources?: unknown;
  envFrom?: unknown[];
  /** Pod-template annotations (a change rolls the pods). */
  podAnnotations?: Record<string, string>;
}

function deployment(ns: string, name: string, spec: DeploymentSpec): Manifest[] {
  const labels = labelsFor(name);
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: spec.replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels, ...(spec.podAnnotations ? { annotations: spec.podAnnotations } : {}) },
          spec: {
            securityContext: {
              runAsNonRoot: true,
              ...(spec.runAsUser !== undefined ? { runAsUser: spec.runAsUser, runAsGroup: spec.runAsUser, fsGroup: spec.runAsUser } : {}),
              seccompProfile: { type: 'RuntimeDefault' },
            },
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } } },
                ],
              },
            },
            containers: [
              {
                name,
                image: spec.image,
                ...(spec.args ? { args: spec.args } : {}),
                ports: [{ name: 'http', containerPort: spec.port }, ...(spec.statusPort ? [{ name: 'status', containerPort: spec.statusPort }] : [])],
                env: spec.env,
                ...(spec.envFrom ? { envFrom: spec.envFrom } : {}),
                readinessProbe: { httpGet: { path: spec.readyPath ?? spec.probePath, port: spec.statusPort ? 'status' : 'http' }, periodSeconds: 5 },
                livenessProbe: { httpGet: { path: spec.probePath, port: spec.statusPort ? 'status' : 'http' }, periodSeconds: 10, failureThreshold: 6 },
                resources: spec.resources ?? { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                ...(spec.volumeMounts ? { volumeMounts: spec.volumeMounts } : {}),
              },
            ],
            ...(spec.volumes ? { volumes: spec.volumes } : {}),
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: spec.port, targetPort: 'http' }] },
    },
  ];
}

/** The user Supabase's containers run as (GoTrue's image creates its user with this id). */
const SUPABASE_UID = 1000;

const secretEnv = (name: string, secret: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: secret, key } } });

/**
 * Supabase auth (GoTrue), REST (PostgREST) and storage (storage-api). Their gateway is the ingress
 * (render/kube/ingress.ts): Traefik checks the apikey before anything reaches PostgREST — a bare
 * ingress would serve every request as `anon`.
 */
export function supabaseManifests(config: Config, keysRevision?: string): Manifest[] {
  if (!config.supabase.enabled) return [];
  const ns = config.namespaces.supabase;
  // Every Supabase container runs as SUPABASE_UID and rolls when the keys it reads from its environment change.
  const supabaseDeployment = (name: string, spec: DeploymentSpec) =>
    deployment(ns, name, { runAsUser: SUPABASE_UID, ...(keysRevision ? { podAnnotations: { [KEYS_REVISION_ANNOTATION]: keysRevision } } : {}), ...spec });
  const s = config.supabase;
  const host = config.ingress.hosts[0]?.name;
  const externalUrl = host ? `https://${host}` : (s.siteUrl ?? 'http://localhost');
  const jwt = (name: string, key: string) => secretEnv(name, SECRET_NAMES.supabaseJwt, key);
  const db = (name: string, key: string) => secretEnv(name, SECRET_NAMES.supabaseDb, key);
  const storageVolume = s.storage.backend === 'file';
  return [
    ...(storageVolume
      ? [
          {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            metadata: { name: 'supabase-storage', namespace: ns, labels: labelsFor('storage') },
            spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: s.storage.size } } },
          },
        ]
      : []),
    ...supabaseDeployment('auth', {
      image: s.images.auth,
      replicas: 2,
      port: 9999,
      probePath: '/health',
      env: [
        { name: 'GOTRUE_API_HOST', value: '0.0.0.0' },
        { name: 'PORT', value: '9999' },
        { name: 'API_EXTERNAL_URL', value: `${externalUrl}/auth/v1` },
        { name: 'GOTRUE_SITE_URL', value: s.siteUrl ?? externalUrl },
        { name: 'GOTRUE_DB_DRIVER', value: 'postgres' },
        db('GOTRUE_DB_DATABASE_URL', 'auth-url'),
        jwt('GOTRUE_JWT_SECRET', 'jwt-secret'),
        { name: 'GOTRUE_JWT_EXP', value: String(s.jwtExpirySeconds) },
        { name: 'GOTRUE_JWT_AUD', value: 'authenticated' },
        { name: 'GOTRUE_JWT_DEFAULT_GROUP_NAME', value: 'authenticated' },
        { name: 'GOTRUE_JWT_ADMIN_ROLES', value: 'service_role' },
        { name: 'GOTRUE_DISABLE_SIGNUP', value: 'false' },
      ],
    }),
    ...supabaseDeployment('rest', {
      image: s.images.rest,
      replicas: 2,
      port: 3000,
      // PostgREST's admin server (its own port: on the API's port PostgREST would not start) answers /live and /ready.
      statusPort: 3001,
      probePath: '/live',
      readyPath: '/ready',
      env: [
        db('PGRST_DB_URI', 'rest-url'),
        { name: 'PGRST_DB_SCHEMAS', value: 'public,storage' },
        { name: 'PGRST_DB_ANON_ROLE', value: 'anon' },
        // A key set: during a rotation PostgREST accepts tokens signed with the previous secret too.
        jwt('PGRST_JWT_SECRET', 'jwks'),
        { name: 'PGRST_DB_USE_LEGACY_GUCS', value: 'false' },
        { name: 'PGRST_ADMIN_SERVER_PORT', value: '3001' },
      ],
    }),
    ...supabaseDeployment('storage', {
      image: s.images.storage,
      replicas: storageVolume ? 1 : 2,
      port: 5000,
      probePath: '/status',
      env: [
        jwt('ANON_KEY', 'anon-key'),
        jwt('SERVICE_KEY', 'service-role-key'),
        jwt('PGRST_JWT_SECRET', 'jwt-secret'),
        db('DATABASE_URL', 'storage-url'),
        { name: 'POSTGREST_URL', value: `http://rest.${ns}.svc:3000` },
        { name: 'FILE_SIZE_LIMIT', value: '52428800' },
        { name: 'TENANT_ID', value: 'stub' },
        { name: 'REGION', value: s.storage.s3?.region ?? 'local' },
        { name: 'GLOBAL_S3_BUCKET', value: s.storage.s3?.bucket ?? 'stub' },
        ...(storageVolume
          ? [
              { name: 'STORAGE_BACKEND', value: 'file' },
              { name: 'FILE_STORAGE_BACKEND_PATH', value: '/var/lib/storage' },
            ]
          : [{ name: 'STORAGE_BACKEND', value: 's3' }, ...(s.storage.s3?.endpoint ? [{ name: 'GLOBAL_S3_ENDPOINT', value: s.storage.s3.endpoint }] : [])]),
      ],
      ...(storageVolume
        ? {
            volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'supabase-storage' } }],
            volumeMounts: [{ name: 'data', mountPath: '/var/lib/storage' }],
          }
        : {}),
    }),
  ];
}

export function appManifests(config: Config, a: AppConfig): Manifest[] {
  const ns = config.namespaces.apps;
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${a.name}-env`, namespace: ns, labels: labelsFor(a.name) },
      data: Object.fromEntries(Object.entries(a.env).sort()),
    },
    ...deployment(ns, a.name, {
      image: a.image,
      replicas: a.replicas,
      port: a.port,
      probePath: a.healthPath,
      ...(a.readyPath ? { readyPath: a.readyPath } : {}),
      envFrom: [{ configMapRef: { name: `${a.name}-env` } }],
      env: a.secrets.map((key) => secretEnv(key, SECRET_NAMES.app(a.name), key)),
      resources: { requests: { cpu: a.resources.cpu, memory: a.resources.memory }, limits: { memory: a.resources.memory } },
    }),
  ];
}
