// etcd member configuration (for `etcd --config-file`): v3 only, mutual TLS on
// both the client and the peer port, no plain-HTTP listener anywhere.
import type { Config } from '../config/schema.ts';
import type { ClusterSecrets, EtcdFiles } from './files.ts';
import { hostPort, type Member, type Topology } from './topology.ts';
import { toYaml } from './yaml.ts';

export interface EtcdRenderInput {
  config: Config;
  topology: Topology;
  member: Member;
  files: EtcdFiles;
  secrets: Pick<ClusterSecrets, 'etcdClusterToken'>;
  /** 'new' when the cluster is formed for the first time, 'existing' when a member joins a running one. */
  state?: 'new' | 'existing';
}

export function renderEtcdConfig({ config, topology, member, files, secrets, state = 'new' }: EtcdRenderInput): string {
  const client = `https://${hostPort(member.address, config.etcd.clientPort)}`;
  const peer = `https://${hostPort(member.address, config.etcd.peerPort)}`;
  const security = {
    'cert-file': files.tls.cert,
    'key-file': files.tls.key,
    'client-cert-auth': true,
    'trusted-ca-file': files.tls.ca,
    'auto-tls': false,
  };
  return toYaml({
    name: member.name,
    'data-dir': files.dataDir,
    'listen-client-urls': client,
    'advertise-client-urls': client,
    'listen-peer-urls': peer,
    'initial-advertise-peer-urls': peer,
    'initial-cluster': topology.etcd.map((m) => `${m.name}=https://${hostPort(m.address, config.etcd.peerPort)}`).join(','),
    'initial-cluster-token': secrets.etcdClusterToken,
    'initial-cluster-state': state,
    'heartbeat-interval': config.etcd.heartbeatIntervalMs,
    'election-timeout': config.etcd.electionTimeoutMs,
    'snapshot-count': config.etcd.snapshotCount,
    'enable-v2': false,
    // Patroni's etcd3 client speaks the v3 JSON gateway; with --config-file etcd 3.4 leaves it off unless asked.
    'enable-grpc-gateway': true,
    'auto-compaction-mode': 'periodic',
    'auto-compaction-retention': '1h',
    'client-transport-security': security,
    'peer-transport-security': security,
    logger: 'zap',
    'log-outputs': ['stderr'],
  });
}
