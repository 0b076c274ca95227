// The edge: Traefik as the ingress controller GardenOS installs (a DaemonSet on every node's HTTP and
// HTTPS ports, as K3s would run it, but version-pinned and configured from gardenos.yaml), the Ingress
// routes of the apps and of Supabase, and where each host's certificate comes from (GardenOS's CA,
// cert-manager's ACME issuer, or a Secret the user manages).
//
// Supabase's gateway is Traefik itself, with the rules of Supabase's Kong configuration: CORS on every
// path; /auth/v1 and /rest/v1 only with the anon or service-role key (forwardAuth to `gardenos
// gateway-auth`, beside Traefik in its pod); the auth paths that arrive from e-mail and OAuth
// providers without a key, and storage (which checks the JWT itself), open; the prefix stripped.
// Kong cannot be fetched on GardenOS's test machines, so it could never be run there; these rules run for real.
//
// Traefik rather than NGINX ingress: K3s ships it, and it is one static Go binary, so the tests run the
// very controller production runs (built from its Go module); ingress-nginx needs an OpenResty build of
// NGINX with Lua modules that Debian does not package.
import { stringify } from 'yaml';
import { hostTls, type Config, type IngressHost } from '../../config/schema.ts';
import { SUPABASE_PATHS } from '../../config/rules.ts';
import { clusterServiceAccount, labelsFor, type Manifest } from './manifest.ts';
import { GATEWAY_AUTH_PORT, GATEWAY_SECRET, KEYS_REVISION_ANNOTATION } from './names.ts';

export const INGRESS_CONTROLLER = 'traefik';
/** The ClusterIssuer hosts with tls: acme get their certificates from. */
export const ACME_ISSUER = 'gardenos-acme';
/** Where Traefik listens inside its pod (unprivileged ports; hostPort maps the node's ports to them). */
const PORTS = { web: 8000, websecure: 8443, traefik: 9000 } as const;

/**
 * The auth paths that arrive without an apikey: e-mail confirmation links (verify) and the OAuth
 * round trip (authorize, callback) come from a mail client or an identity provider, which cannot send one.
 */
export const OPEN_AUTH_PATHS = ['/auth/v1/verify', '/auth/v1/callback', '/auth/v1/authorize'] as const;

/** Traefik's middlewares for Supabase (its file provider), by name, as Ingress annotations name them. */
const MIDDLEWARE = { cors: 'supabase-cors@file', apikey: 'supabase-apikey@file', strip: 'supabase-strip@file' } as const;
const DYNAMIC_DIR = '/etc/traefik/dynamic';

/** The Secret holding a host's certificate (tls: internal or acme), in each namespace that routes the host. */
export const tlsSecretName = (h: IngressHost) => (hostTls(h) === 'secret' ? h.tlsSecret! : `${h.name}-tls`);

interface Route {
  host: string;
  path: string;
  service: string;
  port: number;
}

interface RouteSet {
  ns: string;
  name: string;
  routes: Route[];
  /** Traefik middlewares, in order. */
  middlewares?: string[];
}

/** Every Ingress GardenOS renders: its namespace, name and routes. */
function routeSets(config: Config): RouteSet[] {
  const out: RouteSet[] = config.apps
    .filter((a) => a.routes.length)
    .map((a) => ({ ns: config.namespaces.apps, name: a.name, routes: a.routes.map((r) => ({ host: r.host, path: r.path, service: a.name, port: a.port })) }));
  const host = config.ingress.hosts[0]?.name;
  if (config.supabase.enabled && host) {
    const [auth, rest, storage] = SUPABASE_PATHS;
    const to = (path: string, service: string, port: number) => ({ host, path, service, port });
    out.push(
      {
        ns: config.namespaces.supabase,
        name: 'supabase',
        routes: [to(auth, 'auth', 9999), to(rest, 'rest', 3000)],
        middlewares: [MIDDLEWARE.cors, MIDDLEWARE.apikey, MIDDLEWARE.strip],
      },
      {
        ns: config.namespaces.supabase,
        name: 'supabase-open',
        routes: [...OPEN_AUTH_PATHS.map((p) => to(p, 'auth', 9999)), to(storage, 'storage', 5000)],
        middlewares: [MIDDLEWARE.cors, MIDDLEWARE.strip],
      },
    );
  }
  return out;
}

/** Traefik's file-provider configuration of Supabase's middlewares: no secret in it (gateway-auth holds the keys). */
function supabaseMiddlewares(): string {
  return stringify(
    {
      http: {
        middlewares: {
          // Kong's cors plugin as Supabase configures it: any origin; the headers supabase-js sends. Traefik answers preflights itself.
          'supabase-cors': {
            headers: {
              accessControlAllowOriginList: ['*'],
              accessControlAllowMethods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS'],
              accessControlAllowHeaders: [
                'authorization',
                'apikey',
                'content-type',
                'x-client-info',
                'accept-profile',
                'content-profile',
                'prefer',
                'range',
                'x-upsert',
                'cache-control',
                'x-supabase-api-version',
              ],
              accessControlExposeHeaders: ['content-range', 'content-location', 'preference-applied'],
              accessControlMaxAge: 3600,
              addVaryHeader: true,
            },
          },
          'supabase-apikey': { forwardAuth: { address: `http://127.0.0.1:${GATEWAY_AUTH_PORT}/` } },
          'supabase-strip': { stripPrefix: { prefixes: [...SUPABASE_PATHS] } },
        },
      },
    },
    { lineWidth: 0 },
  );
}

/** Which namespaces route each host: a host's certificate Secret must be in each of them. */
export function hostNamespaces(config: Config): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const set of routeSets(config)) {
    for (const r of set.routes) out.set(r.host, (out.get(r.host) ?? new Set()).add(set.ns));
  }
  return out;
}

/** The namespaces whose Ingresses the controller watches (and may read Services, EndpointSlices and Secrets in). */
const watchedNamespaces = (config: Config) => [...new Set(routeSets(config).map((s) => s.ns))].sort();

export function ingressManifests(config: Config): Manifest[] {
  const hosts = new Map(config.ingress.hosts.map((h) => [h.name, h]));
  const out: Manifest[] = [];
  for (const set of routeSets(config)) {
    const names = [...new Set(set.routes.map((r) => r.host))];
    const tls = names
      .map((n) => hosts.get(n))
      .filter((h): h is IngressHost => !!h && hostTls(h) !== 'none')
      .map((h) => ({ hosts: [h.name], secretName: tlsSecretName(h) }));
    out.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: set.name,
        namespace: set.ns,
        labels: labelsFor(set.name),
        ...(set.middlewares ? { annotations: { 'traefik.ingress.kubernetes.io/router.middlewares': set.middlewares.join(',') } } : {}),
      },
      spec: {
        ingressClassName: config.ingress.className,
        ...(tls.length ? { tls } : {}),
        rules: names.map((host) => ({
          host,
          http: {
            paths: set.routes
              .filter((r) => r.host === host)
              .map((r) => ({ path: r.path, pathType: 'Prefix', backend: { service: { name: r.service, port: { number: r.port } } } })),
          },
        })),
      },
    });
  }
  // tls: acme — a Certificate per host and namespace, issued by cert-manager into the Secret the Ingress names.
  for (const [name, namespaces] of hostNamespaces(config)) {
    const h = hosts.get(name);
    if (!h || hostTls(h) !== 'acme') continue;
    for (const ns of namespaces) {
      out.push({
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: tlsSecretName(h), namespace: ns, labels: labelsFor('ingress') },
        spec: { secretName: tlsSecretName(h), dnsNames: [h.name], issuerRef: { kind: 'ClusterIssuer', name: ACME_ISSUER } },
      });
    }
  }
  return out;
}

/** cert-manager's ACME issuer for hosts with tls: acme, solving HTTP-01 challenges through this ingress class. */
export function acmeIssuer(config: Config): Manifest[] {
  const acme = config.ingress.acme;
  if (!acme || !config.ingress.hosts.some((h) => hostTls(h) === 'acme')) return [];
  return [
    {
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: ACME_ISSUER, labels: labelsFor('ingress') },
      spec: {
        acme: {
          email: acme.email,
          server: acme.server,
          privateKeySecretRef: { name: `${ACME_ISSUER}-account` },
          solvers: [{ http01: { ingress: { ingressClassName: config.ingress.className } } }],
        },
      },
    },
  ];
}

/**
 * Traefik: a DaemonSet whose pods take each node's HTTP and HTTPS ports (hostPort; the journal has no
 * cloud load balancer), an IngressClass it serves, and least privilege — it reads Ingresses, Services,
 * EndpointSlices and Secrets only in the namespaces that have routes, and IngressClasses and Nodes
 * cluster-wide. HTTP redirects to HTTPS unless a host asked for tls: none.
 */
export function ingressControllerManifests(config: Config, keysRevision?: string): Manifest[] {
  const ing = config.ingress;
  if (ing.controller !== 'traefik') return [];
  const ns = config.namespaces.platform;
  const name = INGRESS_CONTROLLER;
  const labels = labelsFor(name);
  const watched = watchedNamespaces(config);
  const redirect = !ing.hosts.some((h) => hostTls(h) === 'none');
  const gateway = config.supabase.enabled;
  const args = [
    '--global.checkNewVersion=false',
    '--global.sendAnonymousUsage=false',
    `--entryPoints.web.address=:${PORTS.web}/tcp`,
    `--entryPoints.websecure.address=:${PORTS.websecure}/tcp`,
    '--entryPoints.websecure.http.tls=true',
    ...(redirect ? [`--entryPoints.web.http.redirections.entryPoint.to=:${ing.httpsPort}`, '--entryPoints.web.http.redirections.entryPoint.scheme=https'] : []),
    `--entryPoints.traefik.address=:${PORTS.traefik}/tcp`,
    '--ping=true',
    '--metrics.prometheus=true',
    '--providers.kubernetesingress=true',
    `--providers.kubernetesingress.ingressClass=${ing.className}`,
    ...(watched.length ? [`--providers.kubernetesingress.namespaces=${watched.join(',')}`] : []),
    // Kubernetes' own Prefix semantics: /api matches /api/x, never /apiary.
    '--providers.kubernetesingress.strictPrefixMatching=true',
    // A route whose Service has no ready pod answers 503; without this Traefik drops the route, and the
    // request falls through to a shorter one on the same host (/rest/v1 to an app's /).
    '--providers.kubernetesingress.allowEmptyServices=true',
    // One file (a ConfigMap's directory also holds its own versioned copies, which a directory provider would read twice).
    ...(gateway ? [`--providers.file.filename=${DYNAMIC_DIR}/supabase.yml`] : []),
    '--log.format=json',
    '--accesslog=true',
    '--accesslog.format=json',
  ];
  const readAll = ['get', 'list', 'watch'];
  return [
    ...clusterServiceAccount(name, ns, labels, [
      { apiGroups: ['networking.k8s.io'], resources: ['ingressclasses'], verbs: readAll },
      { apiGroups: [''], resources: ['nodes'], verbs: readAll },
    ]),
    ...watched.flatMap((target): Manifest[] => [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: `gardenos-${name}`, namespace: target, labels },
        rules: [
          { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: readAll },
          { apiGroups: [''], resources: ['services', 'secrets'], verbs: readAll },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: readAll },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: `gardenos-${name}`, namespace: target, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `gardenos-${name}` },
        subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
      },
    ]),
    ...(gateway
      ? [
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: `${name}-dynamic`, namespace: ns, labels },
            data: { 'supabase.yml': supabaseMiddlewares() },
          } satisfies Manifest,
        ]
      : []),
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: { name: ing.className, labels, annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
      spec: { controller: 'traefik.io/ingress-controller' },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace: ns, labels },
      spec: {
        selector: { matchLabels: labels },
        // Two pods cannot hold one node's ports: replace one node's pod at a time.
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels, ...(gateway && keysRevision ? { annotations: { [KEYS_REVISION_ANNOTATION]: keysRevision } } : {}) },
          spec: {
            serviceAccountName: name,
            terminationGracePeriodSeconds: 30,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              {
                name,
                image: ing.image,
                command: ['traefik'],
                args,
                ports: [
                  { name: 'web', containerPort: PORTS.web, hostPort: ing.httpPort, protocol: 'TCP' },
                  { name: 'websecure', containerPort: PORTS.websecure, hostPort: ing.httpsPort, protocol: 'TCP' },
                  { name: 'metrics', containerPort: PORTS.traefik, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/ping', port: 'metrics' }, periodSeconds: 5, failureThreshold: 2 },
                livenessProbe: { httpGet: { path: '/ping', port: 'metrics' }, periodSeconds: 10, failureThreshold: 6 },
                resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(gateway ? [{ name: 'dynamic', mountPath: DYNAMIC_DIR, readOnly: true }] : [])],
              },
              ...(gateway
                ? [
                    {
                      // Supabase's apikey check, on loopback: only this pod's Traefik asks it.
                      name: 'gateway-auth',
                      image: config.router.image,
                      args: ['gateway-auth', '--listen', `127.0.0.1:${GATEWAY_AUTH_PORT}`],
                      env: [
                        { name: 'SUPABASE_ANON_KEY', valueFrom: { secretKeyRef: { name: GATEWAY_SECRET, key: 'anon-key' } } },
                        { name: 'SUPABASE_SERVICE_ROLE_KEY', valueFrom: { secretKeyRef: { name: GATEWAY_SECRET, key: 'service-role-key' } } },
                        // During a rotation (pki --rotate supabase) the previous keys are accepted too.
                        { name: 'SUPABASE_PREVIOUS_ANON_KEY', valueFrom: { secretKeyRef: { name: GATEWAY_SECRET, key: 'previous-anon-key', optional: true } } },
                        {
                          name: 'SUPABASE_PREVIOUS_SERVICE_ROLE_KEY',
                          valueFrom: { secretKeyRef: { name: GATEWAY_SECRET, key: 'previous-service-role-key', optional: true } },
                        },
                      ],
                      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '96Mi' } },
                      securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                    },
                  ]
                : []),
            ],
            volumes: [{ name: 'tmp', emptyDir: {} }, ...(gateway ? [{ name: 'dynamic', configMap: { name: `${name}-dynamic` } }] : [])],
          },
        },
      },
    },
  ];
}
