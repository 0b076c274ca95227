// The router's settings for a platform: where etcd is, which scope to follow,
// and which sinks to drive. Local: the HAProxy admin socket.
import type { Config } from '../config/schema.ts';
import type { RouterSettings } from '../router/settings.ts';
import type { TlsFiles } from './files.ts';
import { etcdClientUrls, type Topology } from './topology.ts';
import { toYaml } from './yaml.ts';

export interface RouterRenderInput {
  config: Config;
  topology: Topology;
  etcdTls: TlsFiles;
  listenHost: string;
  sinks: RouterSettings['sinks'];
  /** Certificates whose expiry the router reports (default: the CA and its own etcd client certificate). */
  certificates?: string[];
  /** The pooler the router reports on (its admin socket; a stats user's password file). */
  pooler?: RouterSettings['pooler'];
}

export function routerSettings({ config, topology, etcdTls, listenHost, sinks, certificates, pooler }: RouterRenderInput): RouterSettings {
  return {
    scope: config.postgres.scope,
    namespace: config.postgres.namespace,
    etcd: { endpoints: etcdClientUrls(config, topology), tls: etcdTls },
    patroniCa: etcdTls.ca,
    replicaMaxLagBytes: config.router.replicaMaxLagBytes,
    recheckIntervalMs: config.router.recheckIntervalMs,
    listen: { host: listenHost, port: config.router.port },
    deadLeader: { enabled: config.router.deadLeader.enabled, confirmMs: config.router.deadLeader.confirmMs, intervalMs: 200, probeTimeoutMs: 500 },
    sinks,
    certificates: certificates ?? [etcdTls.ca, etcdTls.cert],
    ...(pooler ? { pooler } : {}),
  };
}

export function renderRouterSettings(input: RouterRenderInput): string {
  return toYaml(routerSettings(input));
}
