// Kubernetes manifests for the router: one Deployment with 2 replicas (a Lease
// picks the one that writes), a ServiceAccount with a namespaced Role that can
// touch only the objects it owns, the selector-less primary and replica
// Services with their Endpoints, EndpointSlices and the Lease pre-created (so
// the Role needs no `create`), and the router's settings in a ConfigMap.
import { stringify } from 'yaml';
import type { Config } from '../../config/schema.ts';
import { routerSettings } from '../router.ts';
import { productionTopology } from '../topology.ts';
import { GENERATED } from '../yaml.ts';
import type { Manifest } from './manifest.ts';
import { APPLY_ANNOTATION, CREATE_ONLY, ENDPOINTS_LABELS, ROUTER_NAME, postgresPodSelector } from './names.ts';
import { PRIMARY_ROUTE, REPLICAS_SERVICE } from '../../names.ts';

const createOnly = <M extends Manifest['metadata']>(m: M): M => ({ ...m, annotations: { ...m.annotations, [APPLY_ANNOTATION]: CREATE_ONLY } });
const TLS_DIR = '/etc/gardenos/tls';

export function routerManifests(config: Config): Manifest[] {
  const ns = config.namespaces.database;
  const scope = config.postgres.scope;
  const labels = { 'app.kubernetes.io/name': ROUTER_NAME, 'app.kubernetes.io/part-of': 'gardenos' };
  // Patroni on Kubernetes names members after their pods: <scope>-0, -1, -2 of the StatefulSet.
  const pods = [0, 1, 2].map((i) => `${scope}-${i}`);
  const services = [PRIMARY_ROUTE, REPLICAS_SERVICE];
  const settings = routerSettings({
    config,
    topology: productionTopology(config),
    etcdTls: { ca: `${TLS_DIR}/ca.crt`, cert: `${TLS_DIR}/tls.crt`, key: `${TLS_DIR}/tls.key` },
    listenHost: '0.0.0.0',
    sinks: [
      {
        type: 'kubernetes',
        namespace: ns,
        primaryService: services[0]!,
        replicasService: services[1]!,
        podSelector: postgresPodSelector(scope),
        port: config.postgres.port,
        lease: { name: ROUTER_NAME, durationSeconds: 15 },
      },
    ],
  });
  const meta = (name: string, extra: Record<string, string> = {}) => ({ name, namespace: ns, labels: { ...labels, ...extra } });
  const port = { name: 'postgresql', port: config.postgres.port, protocol: 'TCP' };

  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(ROUTER_NAME), automountServiceAccountToken: true },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta(ROUTER_NAME),
      rules: [
        { apiGroups: [''], resources: ['endpoints'], resourceNames: services, verbs: ['get', 'update'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], resourceNames: services.map((s) => `${s}-gardenos`), verbs: ['get', 'update'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
        { apiGroups: [''], resources: ['pods'], resourceNames: pods, verbs: ['patch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [ROUTER_NAME], verbs: ['get', 'update'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(ROUTER_NAME),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: ROUTER_NAME },
      subjects: [{ kind: 'ServiceAccount', name: ROUTER_NAME, namespace: ns }],
    },
    ...services.flatMap((name): Manifest[] => [
      // No selector: only the router decides which pod is behind it.
      { apiVersion: 'v1', kind: 'Service', metadata: meta(name), spec: { type: 'ClusterIP', ports: [{ ...port, targetPort: config.postgres.port }] } },
      // Created once, then the router's: a later `gardenos up` must not put back the empty list over the leader.
      { apiVersion: 'v1', kind: 'Endpoints', metadata: createOnly(meta(name, ENDPOINTS_LABELS)), subsets: [] },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: createOnly(meta(`${name}-gardenos`, { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': ROUTER_NAME })),
        addressType: 'IPv4',
        endpoints: [],
        ports: [port],
      },
    ]),
    { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: createOnly(meta(ROUTER_NAME)), spec: {} },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(ROUTER_NAME), data: { 'router.yml': stringify(settings, { lineWidth: 0 }) } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(ROUTER_NAME),
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: ROUTER_NAME,
            // fsGroup: the kubelet writes Secret files owned by root; the group is what lets user 10001 read its key.
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } } },
                ],
              },
            },
            containers: [
              {
                name: 'router',
                image: config.router.image,
                args: ['router', '--config', '/etc/gardenos/router.yml'],
                env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
                ports: [{ name: 'http', containerPort: config.router.port }],
                readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 },
                livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 3 },
                resources: { requests: { cpu: '20m', memory: '96Mi' }, limits: { memory: '192Mi' } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'settings', mountPath: '/etc/gardenos/router.yml', subPath: 'router.yml', readOnly: true },
                  { name: 'etcd-client', mountPath: TLS_DIR, readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: 'settings', configMap: { name: ROUTER_NAME } },
              // The etcd client certificate for the router, written by `gardenos pki` / `render --with-secrets`.
              { name: 'etcd-client', secret: { secretName: `${ROUTER_NAME}-etcd-client`, defaultMode: 0o440 } },
            ],
          },
        },
      },
    },
  ];
}

export function renderRouterManifests(config: Config): string {
  return `${GENERATED}\n${routerManifests(config)
    .map((m) => stringify(m, { lineWidth: 0 }))
    .join('---\n')}`;
}
