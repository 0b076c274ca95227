// The platform's Kubernetes manifests, in the order they must be applied:
// namespaces; a default StorageClass when K3s's own is disabled; PostgreSQL as
// a Patroni StatefulSet; the primary router; Supabase (auth, REST, storage)
// (its gateway is the ingress); the user's apps; the ingress controller and routes. Secrets are
// referenced by name; their contents are rendered only on request (`secretManifests`).
import { hostTls, type AppConfig, type Config } from '../config/schema.ts';
import { renderPatroniConfig } from '../render/patroni.ts';
import { ROUTER_NAME, postgresPodLabels } from '../render/kube/names.ts';
import { GATEWAY_SECRET, acmeIssuer, hostNamespaces, ingressControllerManifests, ingressManifests, tlsSecretName } from '../render/kube/ingress.ts';
import { PART_OF, labelsFor, type Manifest } from '../render/kube/manifest.ts';
import { routerManifests } from '../render/kube/router.ts';
import { productionTopology } from '../render/topology.ts';
import type { PemPair } from '../pki/certs.ts';
import type { PlatformSecrets } from './secrets.ts';

export type { Manifest };

/** A file of the kustomization: a name and its manifests. */
export interface ManifestFile {
  file: string;
  manifests: Manifest[];
}

/** Names of the Secrets the manifests use; `render --with-secrets` writes them, `gardenos up` applies them. */
export const SECRET_NAMES = {
  postgresConfig: 'postgres-patroni',
  postgresTls: 'postgres-tls',
  routerEtcd: `${ROUTER_NAME}-etcd-client`,
  supabaseDb: 'supabase-db',
  supabaseJwt: 'supabase-jwt',
  gateway: GATEWAY_SECRET,
  app: (name: string) => `${name}-secrets`,
} as const;

const PATRONI_CONFIG_DIR = '/etc/patroni';
/** Where the volume is mounted, in both images (Spilo's layout). */
const PGDATA_MOUNT = '/home/postgres/pgdata';
/** Patroni's data directory: a directory under the mount, so a file system's lost+found never stops initdb. */
const PGDATA = `${PGDATA_MOUNT}/pgroot/data`;
/** The postgres user and group of each image: images/postgres/install.sh fixes 999; Spilo's is 101. */
const POSTGRES_UID = { gardenos: 999, spilo: 101 } as const;

function namespaces(config: Config): Manifest[] {
  return [...new Set(Object.values(config.namespaces))].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...PART_OF } } }));
}

/** Rancher's local-path provisioner as the default StorageClass (the journal's "no storage class": PVCs stuck Pending). */
function localPathStorage(config: Config): Manifest[] {
  const ns = config.namespaces.platform;
  const name = 'local-path-provisioner';
  const labels = labelsFor(name);
  const helperPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'helper-pod' },
    spec: {
      priorityClassName: 'system-node-critical',
      tolerations: [{ key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' }],
      // It makes and removes directories under storage.path on the node, whatever user the image declares.
      securityContext: { runAsUser: 0, runAsGroup: 0 },
      containers: [{ name: 'helper-pod', image: config.storage.helperImage, imagePullPolicy: 'IfNotPresent' }],
    },
  };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: `gardenos-${name}`, labels },
      rules: [
        { apiGroups: [''], resources: ['nodes', 'persistentvolumeclaims', 'configmaps', 'pods', 'pods/log'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['persistentvolumes', 'pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `gardenos-${name}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `gardenos-${name}` },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'local-path-config', namespace: ns, labels },
      data: {
        'config.json': JSON.stringify({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [config.storage.path] }] }, null, 2),
        setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
        teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
        'helperPod.yaml': JSON.stringify(helperPod, null, 2),
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            containers: [
              {
                name: 'provisioner',
                image: config.storage.provisionerImage,
                command: ['local-path-provisioner', '--debug', 'start', '--config', '/etc/config/config.json', '--service-account-name', name, '--configmap-name', 'local-path-config'],
                env: [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
                resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                volumeMounts: [{ name: 'config', mountPath: '/etc/config/' }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'local-path-config' } }],
          },
        },
      },
    },
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'local-path', labels, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'rancher.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Retain',
    },
  ];
}

/**
 * PostgreSQL: a Patroni StatefulSet (GardenOS's image by default, Spilo's if chosen), one pod per
 * postgres node (required anti-affinity), on the host network so that each member is reachable at
 * its node's private address — where HAProxy checks it and etcd's certificates name it. Patroni
 * reads the same rendered patroni.yml as everywhere else; the pod's name and address come from the environment.
 */
function postgres(config: Config): Manifest[] {
  const ns = config.namespaces.database;
  const scope = config.postgres.scope;
  const topo = productionTopology(config);
  const selector = postgresPodLabels(scope);
  const labels = { ...selector, ...labelsFor('postgres') };
  const pg = config.postgres;
  const uid = POSTGRES_UID[pg.flavor];
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: scope, namespace: ns, labels },
      spec: { clusterIP: 'None', selector, ports: [{ name: 'postgresql', port: pg.port }, { name: 'patroni', port: pg.patroniPort }] },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: scope, namespace: ns, labels },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: scope, namespace: ns, labels },
      spec: {
        serviceName: scope,
        replicas: topo.postgres.length,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            hostNetwork: true,
            dnsPolicy: 'ClusterFirstWithHostNet',
            terminationGracePeriodSeconds: 60,
            securityContext: { fsGroup: uid },
            affinity: {
              nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: topo.postgres.map((m) => m.name) }] }] } },
              podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } }] },
            },
            initContainers: [
              {
                // The journal's "initdb could not change permissions": the volume arrives root-owned.
                // The postgres image's own shell, as root, for this one step.
                name: 'volume-permissions',
                image: pg.image,
                command: ['sh', '-c', `[ "$(stat -c %u:%g ${PGDATA_MOUNT})" = ${uid}:${uid} ] || chown -R ${uid}:${uid} ${PGDATA_MOUNT} && chmod 0700 ${PGDATA_MOUNT}`],
                securityContext: { runAsUser: 0, runAsGroup: 0 },
                resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
                volumeMounts: [{ name: 'pgdata', mountPath: PGDATA_MOUNT }],
              },
            ],
            containers: [
              {
                name: 'postgres',
                image: pg.image,
                command: ['patroni', `${PATRONI_CONFIG_DIR}/patroni.yml`],
                securityContext: { runAsUser: uid, runAsGroup: uid, runAsNonRoot: true, allowPrivilegeEscalation: false },
                env: [
                  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                  { name: 'PATRONI_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'PATRONI_RESTAPI_LISTEN', value: `$(POD_IP):${pg.patroniPort}` },
                  { name: 'PATRONI_RESTAPI_CONNECT_ADDRESS', value: `$(POD_IP):${pg.patroniPort}` },
                  { name: 'PATRONI_POSTGRESQL_LISTEN', value: `$(POD_IP):${pg.port}` },
                  { name: 'PATRONI_POSTGRESQL_CONNECT_ADDRESS', value: `$(POD_IP):${pg.port}` },
                ],
                ports: [{ name: 'postgresql', containerPort: pg.port }, { name: 'patroni', containerPort: pg.patroniPort }],
                readinessProbe: { httpGet: { path: '/readiness', port: pg.patroniPort, scheme: 'HTTPS' }, periodSeconds: 5, failureThreshold: 3 },
                livenessProbe: { httpGet: { path: '/liveness', port: pg.patroniPort, scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 6 },
                resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '2Gi' } },
                volumeMounts: [
                  { name: 'pgdata', mountPath: PGDATA_MOUNT },
                  { name: 'patroni', mountPath: PATRONI_CONFIG_DIR, readOnly: true },
                  { name: 'tls', mountPath: '/etc/patroni/tls', readOnly: true },
                  { name: 'run', mountPath: '/var/run/postgresql' },
                ],
              },
            ],
            volumes: [
              { name: 'patroni', secret: { secretName: SECRET_NAMES.postgresConfig, defaultMode: 0o400 } },
              { name: 'tls', secret: { secretName: SECRET_NAMES.postgresTls, defaultMode: 0o400 } },
              { name: 'run', emptyDir: {} },
            ],
          },
        },
        volumeClaimTemplates: [
          { metadata: { name: 'pgdata' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: pg.storage } } } },
        ],
      },
    },
  ];
}

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
          metadata: { labels },
          spec: {
            securityContext: {
              runAsNonRoot: true,
              ...(spec.runAsUser !== undefined ? { runAsUser: spec.runAsUser, runAsGroup: spec.runAsUser, fsGroup: spec.runAsUser } : {}),
              seccompProfile: { type: 'RuntimeDefault' },
            },
            affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } } }] } },
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
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns, labels }, spec: { selector: labels, ports: [{ name: 'http', port: spec.port, targetPort: 'http' }] } },
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
function supabase(config: Config): Manifest[] {
  if (!config.supabase.enabled) return [];
  const ns = config.namespaces.supabase;
  const s = config.supabase;
  const host = config.ingress.hosts[0]?.name;
  const externalUrl = host ? `https://${host}` : (s.siteUrl ?? 'http://localhost');
  const jwt = (name: string, key: string) => secretEnv(name, SECRET_NAMES.supabaseJwt, key);
  const db = (name: string, key: string) => secretEnv(name, SECRET_NAMES.supabaseDb, key);
  const storageVolume = s.storage.backend === 'file';
  return [
    ...(storageVolume
      ? [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'supabase-storage', namespace: ns, labels: labelsFor('storage') }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: s.storage.size } } } }]
      : []),
    ...deployment(ns, 'auth', {
      runAsUser: SUPABASE_UID,
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
    ...deployment(ns, 'rest', {
      runAsUser: SUPABASE_UID,
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
        jwt('PGRST_JWT_SECRET', 'jwt-secret'),
        { name: 'PGRST_DB_USE_LEGACY_GUCS', value: 'false' },
        { name: 'PGRST_ADMIN_SERVER_PORT', value: '3001' },
      ],
    }),
    ...deployment(ns, 'storage', {
      runAsUser: SUPABASE_UID,
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
          ? [{ name: 'STORAGE_BACKEND', value: 'file' }, { name: 'FILE_STORAGE_BACKEND_PATH', value: '/var/lib/storage' }]
          : [{ name: 'STORAGE_BACKEND', value: 's3' }, ...(s.storage.s3?.endpoint ? [{ name: 'GLOBAL_S3_ENDPOINT', value: s.storage.s3.endpoint }] : [])]),
      ],
      ...(storageVolume
        ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'supabase-storage' } }], volumeMounts: [{ name: 'data', mountPath: '/var/lib/storage' }] }
        : {}),
    }),
  ];
}

function app(config: Config, a: AppConfig): Manifest[] {
  const ns = config.namespaces.apps;
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${a.name}-env`, namespace: ns, labels: labelsFor(a.name) }, data: Object.fromEntries(Object.entries(a.env).sort()) },
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

/** The manifests of the platform, file by file, in the order `kubectl apply -k` should see them. */
export function platformManifests(config: Config): ManifestFile[] {
  const files: ManifestFile[] = [{ file: '00-namespaces.yaml', manifests: namespaces(config) }];
  if (config.k3s.disable.includes('local-storage')) files.push({ file: '10-storage.yaml', manifests: localPathStorage(config) });
  files.push({ file: '20-postgres.yaml', manifests: postgres(config) });
  files.push({ file: '30-router.yaml', manifests: routerManifests(config) });
  if (config.supabase.enabled) files.push({ file: '40-supabase.yaml', manifests: supabase(config) });
  if (config.apps.length) files.push({ file: '50-apps.yaml', manifests: config.apps.flatMap((a) => app(config, a)) });
  const controller = ingressControllerManifests(config);
  if (controller.length) files.push({ file: '55-ingress-controller.yaml', manifests: controller });
  const ing = ingressManifests(config);
  if (ing.length) files.push({ file: '60-ingress.yaml', manifests: ing });
  const issuer = acmeIssuer(config);
  if (issuer.length) files.push({ file: '65-acme-issuer.yaml', manifests: issuer });
  return files;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export interface SecretInputs {
  secrets: PlatformSecrets;
  ca: string;
  postgresServer: PemPair;
  routerClient: PemPair;
  /** Certificates of the ingress hosts with tls: internal, by host. */
  ingressCerts: Record<string, PemPair>;
}

/** The Secrets the manifests reference, with their contents: only `render --with-secrets` and `gardenos up` produce these. */
export function secretManifests(config: Config, input: SecretInputs): Manifest[] {
  const { secrets } = input;
  const topo = productionTopology(config);
  const secret = (name: string, ns: string, data: Record<string, string>): Manifest => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, labels: { ...PART_OF } },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  });
  const tlsDir = '/etc/patroni/tls';
  const patroni = renderPatroniConfig({
    config,
    topology: topo,
    // Name and addresses come from the pod's environment (PATRONI_NAME, PATRONI_*_LISTEN / CONNECT_ADDRESS).
    member: { name: 'set-by-PATRONI_NAME', address: '0.0.0.0' },
    files: { dataDir: PGDATA, binDir: `/usr/lib/postgresql/${config.postgres.version}/bin`, socketDir: '/var/run/postgresql', pgpass: '/tmp/pgpass', tls: { ca: `${tlsDir}/ca.crt`, cert: `${tlsDir}/tls.crt`, key: `${tlsDir}/tls.key` } },
    secrets,
  });
  const ns = config.namespaces;
  const pgHost = `postgres-primary.${ns.database}.svc`;
  const url = (user: string, password: string) => `postgres://${user}:${encodeURIComponent(password)}@${pgHost}:${config.postgres.port}/postgres?sslmode=require`;
  const out = [
    secret(SECRET_NAMES.postgresConfig, ns.database, { 'patroni.yml': patroni }),
    secret(SECRET_NAMES.postgresTls, ns.database, { 'ca.crt': input.ca, 'tls.crt': input.postgresServer.cert, 'tls.key': input.postgresServer.key }),
    secret(SECRET_NAMES.routerEtcd, ns.database, { 'ca.crt': input.ca, 'tls.crt': input.routerClient.cert, 'tls.key': input.routerClient.key }),
  ];
  // tls: internal — the host's certificate from GardenOS's CA, in every namespace whose Ingress names it.
  for (const [host, namespaces] of hostNamespaces(config)) {
    const h = config.ingress.hosts.find((x) => x.name === host);
    const pair = input.ingressCerts[host];
    if (!h || hostTls(h) !== 'internal' || !pair) continue;
    for (const ns of [...namespaces].sort()) out.push({ ...secret(tlsSecretName(h), ns, { 'tls.crt': pair.cert, 'tls.key': pair.key }), type: 'kubernetes.io/tls' });
  }
  if (config.supabase.enabled) {
    const s = secrets.supabase;
    out.push(
      secret(SECRET_NAMES.supabaseJwt, ns.supabase, { 'jwt-secret': s.jwtSecret, 'anon-key': s.anonKey, 'service-role-key': s.serviceRoleKey }),
      secret(SECRET_NAMES.supabaseDb, ns.supabase, {
        'auth-url': url('supabase_auth_admin', s.authAdminPassword),
        'rest-url': url('authenticator', s.authenticatorPassword),
        'storage-url': url('supabase_storage_admin', s.storageAdminPassword),
      }),
      // The keys gateway-auth checks, beside Traefik (its pod's environment reads them from its own namespace).
      secret(SECRET_NAMES.gateway, ns.platform, { 'anon-key': s.anonKey, 'service-role-key': s.serviceRoleKey }),
    );
  }
  return out;
}
