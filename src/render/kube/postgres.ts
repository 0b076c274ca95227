// PostgreSQL on Kubernetes: the Patroni StatefulSet, its headless Service and PodDisruptionBudget.
import { dirname } from 'node:path';
import type { Config } from '../../config/schema.ts';
import { USERS } from '../files.ts';
import { productionTopology } from '../topology.ts';
import { memberSidecar, memberVolumes, PGBACKREST_CONFIG, PGBACKREST_POD } from './backups.ts';
import { labelsFor, type Manifest } from './manifest.ts';
import { PGDATA_MOUNT, POSTGRES_SOCKET_DIR, POSTGRES_UID, SECRET_NAMES, postgresPodLabels } from './names.ts';

const PATRONI_CONFIG_DIR = '/etc/patroni';
/** Beside Spilo (which has no exporter), the exporter's own image, whose entrypoint is the exporter. */
const POSTGRES_EXPORTER_IMAGE = 'quay.io/prometheuscommunity/postgres-exporter:v0.17.1';
const EXPORTER_SECRET_DIR = '/etc/postgres-exporter';
const POD_IP = { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } };

/**
 * postgres-exporter beside each member (monitoring.enabled): listening on the node's address (the pod is on
 * the host network, like Patroni), logging in as gardenos_monitor (pg_monitor only) through the pod's own
 * Unix socket — nothing leaves the pod. No readiness probe: an exporter that cannot log in (its role not made
 * yet) must not take its member out of the StatefulSet's rollout; pg_up says so instead.
 */
function exporterContainer(config: Config, uid: number) {
  const { monitoring: m, postgres: pg } = config;
  const image = m.images.postgresExporter ?? (pg.flavor === 'gardenos' ? pg.image : POSTGRES_EXPORTER_IMAGE);
  return {
    name: 'postgres-exporter',
    image,
    // GardenOS's image carries Debian's binary; the exporter's own image starts it as its entrypoint.
    ...(image === pg.image ? { command: ['prometheus-postgres-exporter'] } : {}),
    args: [`--web.listen-address=$(POD_IP):${m.exporterPorts.postgres}`, '--disable-settings-metrics', '--log.format=json'],
    env: [
      POD_IP,
      // No host in the URL (a host there would win), the socket directory as lib/pq's host parameter.
      { name: 'DATA_SOURCE_URI', value: `:${pg.port}/postgres?host=${POSTGRES_SOCKET_DIR}&sslmode=disable` },
      { name: 'DATA_SOURCE_USER', value: USERS.monitor },
      { name: 'DATA_SOURCE_PASS_FILE', value: `${EXPORTER_SECRET_DIR}/password` },
    ],
    ports: [{ name: 'metrics', containerPort: m.exporterPorts.postgres }],
    livenessProbe: { tcpSocket: { port: m.exporterPorts.postgres }, periodSeconds: 10, failureThreshold: 6 },
    securityContext: {
      runAsUser: uid,
      runAsGroup: uid,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
    volumeMounts: [
      { name: 'run', mountPath: POSTGRES_SOCKET_DIR },
      { name: 'exporter', mountPath: EXPORTER_SECRET_DIR, readOnly: true },
    ],
  };
}

/**
 * PostgreSQL: a Patroni StatefulSet (GardenOS's image by default, Spilo's if chosen), one pod per
 * postgres node (required anti-affinity), on the host network so that each member is reachable at
 * its node's private address — where HAProxy checks it and etcd's certificates name it. Patroni
 * reads the same rendered patroni.yml as everywhere else; the pod's name and address come from the environment.
 */
export function postgresManifests(config: Config): Manifest[] {
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
      spec: {
        clusterIP: 'None',
        selector,
        ports: [
          { name: 'postgresql', port: pg.port },
          { name: 'patroni', port: pg.patroniPort },
        ],
      },
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
            ...(config.backups.enabled ? PGBACKREST_POD : {}),
            terminationGracePeriodSeconds: 60,
            securityContext: { fsGroup: uid },
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: topo.postgres.map((m) => m.name) }] }],
                },
              },
              podAntiAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } }],
              },
            },
            initContainers: [
              {
                // The journal's "initdb could not change permissions": the volume arrives root-owned.
                // The postgres image's own shell, as root, for this one step.
                name: 'volume-permissions',
                image: pg.image,
                command: [
                  'sh',
                  '-c',
                  `[ "$(stat -c %u:%g ${PGDATA_MOUNT})" = ${uid}:${uid} ] || chown -R ${uid}:${uid} ${PGDATA_MOUNT} && chmod 0700 ${PGDATA_MOUNT}`,
                ],
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
                  POD_IP,
                  { name: 'PATRONI_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'PATRONI_RESTAPI_LISTEN', value: `$(POD_IP):${pg.patroniPort}` },
                  { name: 'PATRONI_RESTAPI_CONNECT_ADDRESS', value: `$(POD_IP):${pg.patroniPort}` },
                  { name: 'PATRONI_POSTGRESQL_LISTEN', value: `$(POD_IP):${pg.port}` },
                  { name: 'PATRONI_POSTGRESQL_CONNECT_ADDRESS', value: `$(POD_IP):${pg.port}` },
                ],
                ports: [
                  { name: 'postgresql', containerPort: pg.port },
                  { name: 'patroni', containerPort: pg.patroniPort },
                ],
                readinessProbe: { httpGet: { path: '/readiness', port: pg.patroniPort, scheme: 'HTTPS' }, periodSeconds: 5, failureThreshold: 3 },
                livenessProbe: { httpGet: { path: '/liveness', port: pg.patroniPort, scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 6 },
                resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '2Gi' } },
                volumeMounts: [
                  { name: 'pgdata', mountPath: PGDATA_MOUNT },
                  { name: 'patroni', mountPath: PATRONI_CONFIG_DIR, readOnly: true },
                  { name: 'tls', mountPath: '/etc/patroni/tls', readOnly: true },
                  { name: 'run', mountPath: POSTGRES_SOCKET_DIR },
                  // backups.enabled: archive_command and restore_command read pgBackRest's configuration.
                  ...(config.backups.enabled ? [{ name: 'pgbackrest', mountPath: dirname(PGBACKREST_CONFIG), readOnly: true }] : []),
                ],
              },
              ...(config.monitoring.enabled ? [exporterContainer(config, uid)] : []),
              ...(config.backups.enabled ? [memberSidecar(config, pg.image, { pgdata: PGDATA_MOUNT, run: POSTGRES_SOCKET_DIR })] : []),
            ],
            volumes: [
              { name: 'patroni', secret: { secretName: SECRET_NAMES.postgresConfig, defaultMode: 0o400 } },
              { name: 'tls', secret: { secretName: SECRET_NAMES.postgresTls, defaultMode: 0o400 } },
              { name: 'run', emptyDir: {} },
              ...(config.monitoring.enabled ? [{ name: 'exporter', secret: { secretName: SECRET_NAMES.postgresExporter, defaultMode: 0o400 } }] : []),
              ...(config.backups.enabled ? memberVolumes(config) : []),
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'pgdata' },
            spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: pg.storage } } },
          },
        ],
      },
    },
  ];
}
