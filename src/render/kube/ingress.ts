// The edge: Traefik as the ingress controller GardenOS installs (a DaemonSet on every node's HTTP and
// HTTPS ports, as K3s would run it, but version-pinned and configured from gardenos.yaml), the Ingress
// routes of the apps and of Supabase's gateway, and where each host's certificate comes from
// (GardenOS's CA, cert-manager's ACME issuer, or a Secret the user manages).
//
// Traefik rather than NGINX ingress: K3s ships it, and it is one static Go binary, so the tests run the
// very controller production runs (built from its Go module); ingress-nginx needs an OpenResty build of
// NGINX with Lua modules that Debian does not package.
import { hostTls, type Config, type IngressHost } from '../../config/schema.ts';
import { SUPABASE_PATHS } from '../../config/rules.ts';
import { labelsFor, type Manifest } from './manifest.ts';

export const INGRESS_CONTROLLER = 'traefik';
/** The ClusterIssuer hosts with tls: acme get their certificates from. */
export const ACME_ISSUER = 'gardenos-acme';
/** Where Traefik listens inside its pod (unprivileged ports; hostPort maps the node's ports to them). */
const PORTS = { web: 8000, websecure: 8443, traefik: 9000 } as const;

/** The Secret holding a host's certificate (tls: internal or acme), in each namespace that routes the host. */
export const tlsSecretName = (h: IngressHost) => (hostTls(h) === 'secret' ? h.tlsSecret! : `${h.name}-tls`);

interface Route {
  host: string;
  path: string;
  service: string;
  port: number;
}

/** Every Ingress GardenOS renders: its namespace, name and routes. */
function routeSets(config: Config): { ns: string; name: string; routes: Route[] }[] {
  const out = config.apps
    .filter((a) => a.routes.length)
    .map((a) => ({ ns: config.namespaces.apps, name: a.name, routes: a.routes.map((r) => ({ host: r.host, path: r.path, service: a.name, port: a.port })) }));
  const host = config.ingress.hosts[0]?.name;
  if (config.supabase.enabled && host) out.push({ ns: config.namespaces.supabase, name: 'supabase', routes: SUPABASE_PATHS.map((path) => ({ host, path, service: 'gateway', port: 8000 })) });
  return out;
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
    const tls = names.map((n) => hosts.get(n)).filter((h): h is IngressHost => !!h && hostTls(h) !== 'none').map((h) => ({ hosts: [h.name], secretName: tlsSecretName(h) }));
    out.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: set.name, namespace: set.ns, labels: labelsFor(set.name) },
      spec: {
        ingressClassName: config.ingress.className,
        ...(tls.length ? { tls } : {}),
        rules: names.map((host) => ({
          host,
          http: { paths: set.routes.filter((r) => r.host === host).map((r) => ({ path: r.path, pathType: 'Prefix', backend: { service: { name: r.service, port: { number: r.port } } } })) },
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
export function ingressControllerManifests(config: Config): Manifest[] {
  const ing = config.ingress;
  if (ing.controller !== 'traefik') return [];
  const ns = config.namespaces.platform;
  const name = INGRESS_CONTROLLER;
  const labels = labelsFor(name);
  const watched = watchedNamespaces(config);
  const redirect = !ing.hosts.some((h) => hostTls(h) === 'none');
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
    '--log.format=json',
    '--accesslog=true',
    '--accesslog.format=json',
  ];
  const readAll = ['get', 'list', 'watch'];
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: `gardenos-${name}`, labels },
      rules: [
        { apiGroups: ['networking.k8s.io'], resources: ['ingressclasses'], verbs: readAll },
        { apiGroups: [''], resources: ['nodes'], verbs: readAll },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `gardenos-${name}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `gardenos-${name}` },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    },
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
          metadata: { labels },
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
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              },
            ],
            volumes: [{ name: 'tmp', emptyDir: {} }],
          },
        },
      },
    },
  ];
}
