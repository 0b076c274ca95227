// The platform's monitoring (monitoring.enabled): Prometheus with GardenOS's scrape configuration and alert
// rules (a StatefulSet on a local-path volume of monitoring.storage, retention from gardenos.yaml),
// Alertmanager, and node-exporter on every node. Prometheus reads etcd's metrics with an etcd client
// certificate of its own, Patroni's on each postgres node's address, HAProxy's behind the stats
// credentials, and finds every router pod by DNS (a headless Service): it needs no Kubernetes API access
// at all. Everything runs as nobody with a read-only root file system.
import { stringify } from 'yaml';
import type { Config } from '../../config/schema.ts';
import { alertRules, renderAlertmanagerConfig, renderPrometheusConfig } from '../prometheus.ts';
import { hostPort, productionTopology } from '../topology.ts';
import { GENERATED } from '../yaml.ts';
import { labelsFor, type Manifest } from './manifest.ts';
import { ROUTER_NAME, SECRET_NAMES } from './names.ts';

const CONFIG_DIR = '/etc/prometheus';
/** The headless Service whose A records are the router's pods. */
const ROUTER_METRICS = `${ROUTER_NAME}-metrics`;
const ETCD_TLS = '/etc/prometheus/etcd';
const STATS = '/etc/prometheus/haproxy';
const NOBODY = { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } };
const LOCKED = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };

/** The platform's prometheus.yml: the same renderer as the local profile's, with in-cluster addresses. */
export function platformPrometheusConfig(config: Config): string {
  const topology = productionTopology(config);
  const ns = config.namespaces.platform;
  const haproxyNodes = config.nodes.filter((n) => n.roles.includes('haproxy')).map((n) => n.address.private);
  return renderPrometheusConfig({
    config,
    topology,
    tls: { ca: `${ETCD_TLS}/ca.crt`, cert: `${ETCD_TLS}/tls.crt`, key: `${ETCD_TLS}/tls.key` },
    rulesFile: `${CONFIG_DIR}/gardenos.rules.yml`,
    statsPasswordFile: `${STATS}/password`,
    haproxy: haproxyNodes,
    router: [],
    routerPods: { dnsName: `${ROUTER_METRICS}.${config.namespaces.database}.svc` },
    // The sidecar beside each Patroni member, on its node's address (the pod is on the host network).
    postgresExporters: topology.postgres.map((m) => ({ member: m.name, target: hostPort(m.address, config.monitoring.exporterPorts.postgres) })),
    // node-exporter is a DaemonSet: it runs on the Kubernetes nodes (K3s servers) only, not on an etcd-only host.
    nodeExporters: config.nodes.filter((n) => n.roles.includes('k3s-server')).map((n) => hostPort(n.address.private, config.monitoring.exporterPorts.node)),
    alertmanagers: [`alertmanager.${ns}.svc:${config.monitoring.alertmanager.port}`],
  });
}

/** The platform's rules: the backup alerts need the local profile's scheduler and exporter, so they are left out here. */
export function platformAlertRules(config: Config): string {
  const rules = alertRules({ ...config, backups: { ...config.backups, enabled: false } });
  return `${GENERATED}\n${stringify({ groups: [{ name: 'gardenos', rules }] }, { lineWidth: 0 })}`;
}

export function monitoringManifests(config: Config): Manifest[] {
  if (!config.monitoring.enabled) return [];
  const m = config.monitoring;
  const ns = config.namespaces.platform;
  const meta = (name: string) => ({ name, namespace: ns, labels: labelsFor(name) });
  const selector = (name: string) => ({ matchLabels: labelsFor(name) });
  return [
    // One A record per router pod (ready or not: a router that is not ready is what the alerts are for).
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: ROUTER_METRICS, namespace: config.namespaces.database, labels: labelsFor(ROUTER_METRICS) },
      spec: {
        clusterIP: 'None',
        publishNotReadyAddresses: true,
        selector: { 'app.kubernetes.io/name': ROUTER_NAME, 'app.kubernetes.io/part-of': 'gardenos' },
        ports: [{ name: 'http', port: config.router.port, targetPort: 'http' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta('prometheus'),
      data: { 'prometheus.yml': platformPrometheusConfig(config), 'gardenos.rules.yml': platformAlertRules(config) },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('prometheus'),
      spec: { selector: labelsFor('prometheus'), ports: [{ name: 'http', port: m.port, targetPort: 'http' }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta('prometheus'),
      spec: {
        serviceName: 'prometheus',
        replicas: 1,
        selector: selector('prometheus'),
        template: {
          metadata: { labels: labelsFor('prometheus') },
          spec: {
            // Everything it scrapes is found by address or DNS: no Kubernetes API token in the pod.
            automountServiceAccountToken: false,
            securityContext: NOBODY,
            containers: [
              {
                name: 'prometheus',
                image: m.images.prometheus,
                args: [
                  `--config.file=${CONFIG_DIR}/prometheus.yml`,
                  '--storage.tsdb.path=/prometheus',
                  `--storage.tsdb.retention.time=${m.retention}`,
                  `--web.listen-address=:${m.port}`,
                ],
                ports: [{ name: 'http', containerPort: m.port }],
                readinessProbe: { httpGet: { path: '/-/ready', port: 'http' }, periodSeconds: 5 },
                livenessProbe: { httpGet: { path: '/-/healthy', port: 'http' }, periodSeconds: 15, failureThreshold: 4 },
                resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
                securityContext: LOCKED,
                volumeMounts: [
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'etcd-client', mountPath: ETCD_TLS, readOnly: true },
                  { name: 'haproxy-stats', mountPath: STATS, readOnly: true },
                  { name: 'data', mountPath: '/prometheus' },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: 'prometheus' } },
              // Written by `gardenos render --with-secrets` / `gardenos up`: its etcd client certificate and HAProxy's stats password.
              { name: 'etcd-client', secret: { secretName: SECRET_NAMES.prometheusEtcd, defaultMode: 0o440 } },
              { name: 'haproxy-stats', secret: { secretName: SECRET_NAMES.haproxyStats, defaultMode: 0o440 } },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: m.storage } } },
          },
        ],
      },
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('alertmanager'), data: { 'alertmanager.yml': renderAlertmanagerConfig(config) } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('alertmanager'),
      spec: { selector: labelsFor('alertmanager'), ports: [{ name: 'http', port: m.alertmanager.port, targetPort: 'http' }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('alertmanager'),
      spec: {
        replicas: 1,
        selector: selector('alertmanager'),
        template: {
          metadata: { labels: labelsFor('alertmanager') },
          spec: {
            automountServiceAccountToken: false,
            securityContext: NOBODY,
            containers: [
              {
                name: 'alertmanager',
                image: m.images.alertmanager,
                // One Alertmanager: no gossip port. Its silences live for the pod's life (an emptyDir).
                args: [
                  '--config.file=/etc/alertmanager/alertmanager.yml',
                  '--storage.path=/alertmanager',
                  `--web.listen-address=:${m.alertmanager.port}`,
                  '--cluster.listen-address=',
                ],
                ports: [{ name: 'http', containerPort: m.alertmanager.port }],
                readinessProbe: { httpGet: { path: '/-/ready', port: 'http' }, periodSeconds: 5 },
                resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                securityContext: LOCKED,
                volumeMounts: [
                  { name: 'config', mountPath: '/etc/alertmanager', readOnly: true },
                  { name: 'data', mountPath: '/alertmanager' },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: 'alertmanager' } },
              { name: 'data', emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: meta('node-exporter'),
      spec: {
        selector: selector('node-exporter'),
        template: {
          metadata: { labels: labelsFor('node-exporter') },
          spec: {
            automountServiceAccountToken: false,
            // The node's own network and processes: its address is the scrape target, its file systems the metrics.
            hostNetwork: true,
            hostPID: true,
            securityContext: NOBODY,
            tolerations: [{ operator: 'Exists' }],
            containers: [
              {
                name: 'node-exporter',
                image: m.images.nodeExporter,
                // On the node's own address (where Prometheus scrapes it), not on every interface of the host.
                env: [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }],
                args: [
                  '--path.rootfs=/host/root',
                  `--web.listen-address=$(HOST_IP):${m.exporterPorts.node}`,
                  '--collector.disable-defaults',
                  ...['filesystem', 'cpu', 'meminfo', 'loadavg'].map((c) => `--collector.${c}`),
                ],
                ports: [{ name: 'metrics', containerPort: m.exporterPorts.node }],
                resources: { requests: { cpu: '10m', memory: '24Mi' }, limits: { memory: '64Mi' } },
                securityContext: LOCKED,
                volumeMounts: [{ name: 'root', mountPath: '/host/root', readOnly: true, mountPropagation: 'HostToContainer' }],
              },
            ],
            volumes: [{ name: 'root', hostPath: { path: '/' } }],
          },
        },
      },
    },
  ];
}
