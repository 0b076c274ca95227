// What the renderers need to know about where things run: members with the
// address they listen on, the load balancer, and which networks may connect.
// Production derives it from `nodes:`; `gardenos local` from the local profile.
import type { Config, Role } from '../config/schema.ts';

export interface Member {
  name: string;
  /** The private address: what the member listens on and advertises to its peers. */
  address: string;
}

export interface Topology {
  cluster: string;
  etcd: Member[];
  postgres: Member[];
  k3sServers: Member[];
  /** The HAProxy address clients use. */
  loadBalancer: string;
  /** Networks allowed to reach PostgreSQL (pg_hba), besides the members themselves. */
  clientNetworks: string[];
  /** Where member-to-member traffic (replication, pg_rewind) comes from: each member's own address on real hosts. */
  memberNetworks: string[];
}

function withRole(config: Config, role: Role): Member[] {
  return config.nodes.filter((n) => n.roles.includes(role)).map((n) => ({ name: n.name, address: n.address.private }));
}

export function hostCidr(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}

export function productionTopology(config: Config): Topology {
  const haproxy = withRole(config, 'haproxy');
  const postgres = withRole(config, 'postgres');
  const k3sServers = withRole(config, 'k3s-server');
  return {
    cluster: config.cluster.name,
    etcd: withRole(config, 'etcd'),
    postgres,
    k3sServers,
    loadBalancer: config.haproxy.address ?? haproxy[0]?.address ?? config.nodes[0]?.address.private ?? '127.0.0.1',
    // Pods reach PostgreSQL from the pod network; HAProxy and the K3s servers from node addresses.
    clientNetworks: [config.k3s.clusterCidr, ...config.nodes.map((n) => hostCidr(n.address.private))],
    memberNetworks: postgres.map((m) => hostCidr(m.address)),
  };
}

export function etcdClientUrls(config: Config, topo: Topology): string[] {
  return topo.etcd.map((m) => `https://${hostPort(m.address, config.etcd.clientPort)}`);
}

/** host:port with IPv6 addresses in brackets, as URLs and most daemons want them. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
