// Per-host files of the production platform: etcd's configuration and systemd
// unit, K3s's server configuration, HAProxy's configuration. Secrets stay out:
// the K3s token and the certificates are files the configuration points at
// (written by `gardenos up`, or into the render with --with-secrets), and
// HAProxy reads its stats password from an environment file.
import { posix } from 'node:path';
import type { Config, NodeConfig } from '../config/schema.ts';
import { renderEtcdConfig } from '../render/etcd.ts';
import { renderHaproxyConfig } from '../render/haproxy.ts';
import { hostPort, productionTopology, type Member } from '../render/topology.ts';
import { GENERATED, toYaml } from '../render/yaml.ts';

/** Where things live on a host, under `root` (/ on a real host; a directory for staging and tests). */
export function hostPaths(root = '/') {
  const p = (...parts: string[]) => posix.join(root, ...parts);
  const pki = p('etc/gardenos/pki');
  return {
    root,
    pki,
    ca: posix.join(pki, 'ca.crt'),
    cert: (name: string) => ({ cert: posix.join(pki, `${name}.crt`), key: posix.join(pki, `${name}.key`) }),
    etcdConfig: p('etc/gardenos/etcd/etcd.yml'),
    etcdUnit: p('etc/systemd/system/gardenos-etcd.service'),
    k3sConfig: p('etc/rancher/k3s/config.yaml'),
    k3sToken: p('etc/gardenos/k3s/token'),
    haproxyConfig: p('etc/haproxy/haproxy.cfg'),
    haproxyEnv: p('etc/gardenos/haproxy.env'),
    haproxyDropIn: p('etc/systemd/system/haproxy.service.d/gardenos.conf'),
    haproxySocket: p('run/haproxy/admin.sock'),
    etcdData: (config: Config) => p(config.etcd.dataDir),
  };
}

export type HostPaths = ReturnType<typeof hostPaths>;

export interface HostFile {
  path: string;
  content: string;
  mode: number;
}

function etcdUnit(paths: HostPaths): string {
  return `${GENERATED}
[Unit]
Description=etcd for GardenOS (mutual TLS, v3 API only)
Documentation=https://etcd.io/docs/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
User=etcd
ExecStart=/usr/bin/etcd --config-file ${paths.etcdConfig}
Restart=always
RestartSec=5s
LimitNOFILE=65536
NoNewPrivileges=true
ProtectSystem=full

[Install]
WantedBy=multi-user.target
`;
}

export function k3sServerConfig(config: Config, node: NodeConfig, paths: HostPaths): string {
  const topo = productionTopology(config);
  const client = paths.cert('etcd-client-k3s');
  return toYaml({
    // The token is a 0600 file, never an argument that `ps` shows.
    'token-file': paths.k3sToken,
    'datastore-endpoint': topo.etcd.map((m) => `https://${hostPort(m.address, config.etcd.clientPort)}`).join(','),
    'datastore-cafile': paths.ca,
    'datastore-certfile': client.cert,
    'datastore-keyfile': client.key,
    'node-ip': node.address.private,
    'advertise-address': node.address.private,
    'node-external-ip': node.address.public,
    'tls-san': [...new Set([topo.loadBalancer, ...config.nodes.flatMap((n) => [n.address.private, n.address.public, n.name])])],
    'https-listen-port': config.k3s.apiPort,
    'cluster-cidr': config.k3s.clusterCidr,
    'service-cidr': config.k3s.serviceCidr,
    'cluster-dns': config.k3s.clusterDns,
    disable: config.k3s.disable,
    'secrets-encryption': config.k3s.secretsEncryption,
    'write-kubeconfig-mode': '0600',
    // Hybrid servers run workloads (the journal's design); otherwise they keep to the control plane.
    ...(config.k3s.serversRunWorkloads ? {} : { 'node-taint': ['CriticalAddonsOnly=true:NoExecute'] }),
    'kube-apiserver-arg': ['anonymous-auth=false'],
  });
}

/** The files one host gets, by its roles. */
export function hostFiles(config: Config, node: NodeConfig, secrets: { etcdClusterToken: string }, paths: HostPaths): HostFile[] {
  const topo = productionTopology(config);
  const files: HostFile[] = [];
  const member: Member = { name: node.name, address: node.address.private };
  if (node.roles.includes('etcd')) {
    const tls = { ca: paths.ca, ...paths.cert(`etcd-${node.name}`) };
    files.push({
      path: paths.etcdConfig,
      content: renderEtcdConfig({ config, topology: topo, member, files: { dataDir: paths.etcdData(config), tls }, secrets }),
      mode: 0o644,
    });
    files.push({ path: paths.etcdUnit, content: etcdUnit(paths), mode: 0o644 });
  }
  if (node.roles.includes('k3s-server')) files.push({ path: paths.k3sConfig, content: k3sServerConfig(config, node, paths), mode: 0o600 });
  if (node.roles.includes('haproxy')) {
    files.push({
      path: paths.haproxyConfig,
      content: renderHaproxyConfig({
        config,
        topology: topo,
        files: { adminSocket: paths.haproxySocket, ca: paths.ca },
        statsAuth: { env: 'GARDENOS_STATS_PASSWORD' },
        bindAddress: node.address.private,
      }),
      mode: 0o644,
    });
    // Debian's haproxy.service, with the stats password from GardenOS's 0600 environment file.
    files.push({ path: paths.haproxyDropIn, content: `${GENERATED}\n[Service]\nEnvironmentFile=${paths.haproxyEnv}\n`, mode: 0o644 });
  }
  return files;
}
