// The dashboard's view of the production platform: `gardenos status`'s probes (etcd with GardenOS's
// client certificate, each Patroni's REST API, HAProxy's stats on every haproxy node, and — with a
// kubeconfig — where the postgres-primary Service's endpoints point), and the platform's Prometheus
// when its address is given. The routes: postgres-primary as Kubernetes routes it (the router's work)
// when a kubeconfig is at hand, else as HAProxy does; postgres-replicas as HAProxy does.
import type { Config } from '../config/schema.ts';
import { platformStatus, type PlatformStatus } from '../platform/status.ts';
import { prometheusPanels, recordDecision, type DashboardView, type Decision } from './view.ts';
import { PRIMARY_ROUTE, REPLICAS_BACKEND } from '../names.ts';

export interface PlatformSourceOptions {
  secretsDir: string;
  kubeconfig?: string;
  /** The platform's Prometheus (http://host:port), for alerts and charts. */
  prometheus?: string;
  timeoutMs?: number;
}

/** Where each route points, by member name. */
export function platformRoutes(s: PlatformStatus): DashboardView['routes'] {
  const byHost = new Map(s.members.map((m) => [m.host, m.name]));
  const hap = s.haproxy.find((h) => h.reachable);
  const up = (proxy: string) => (hap?.servers ?? []).filter((x) => x.proxy === proxy && x.status.startsWith('UP')).map((x) => byHost.get(x.server) ?? x.server);
  const endpoints = s.kubernetes?.reachable ? s.kubernetes.primaryEndpoint : undefined;
  if (endpoints !== undefined) {
    const primary = endpoints?.length === 1 ? (byHost.get(endpoints[0]!) ?? endpoints[0]!) : null;
    return { primary, replicas: up(REPLICAS_BACKEND), lastChangeAt: null, source: 'Kubernetes (the router)' };
  }
  return {
    primary: up(PRIMARY_ROUTE)[0] ?? null,
    replicas: up(REPLICAS_BACKEND),
    lastChangeAt: null,
    source: hap ? `HAProxy on ${hap.node}` : 'no HAProxy answers',
  };
}

export function platformSource(config: Config, opts: PlatformSourceOptions): () => Promise<DashboardView> {
  let decisions: Decision[] = [];
  let lastPrimary: string | null | undefined;
  let lastChangeAt: string | null = null;
  return async () => {
    const [s, prometheus] = await Promise.all([
      platformStatus(config, { secretsDir: opts.secretsDir, ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}), timeoutMs: opts.timeoutMs ?? 2000 }),
      opts.prometheus
        ? prometheusPanels(opts.prometheus, config.postgres.scope, opts.timeoutMs ?? 2000)
        : Promise.resolve({ url: null, error: 'no Prometheus given: `gardenos dashboard --prometheus http://HOST:PORT`' } as const),
    ]);
    const routes = platformRoutes(s);
    // The router's own decisions are in its log (kubectl logs); here, each move of the primary route as seen.
    if (routes.primary !== lastPrimary) {
      const at = new Date().toISOString();
      if (lastPrimary !== undefined) lastChangeAt = at;
      decisions = recordDecision(decisions, `postgres-primary → ${routes.primary ?? 'nobody'} (${routes.source})`, at);
      lastPrimary = routes.primary;
    }
    return {
      cluster: config.cluster.name,
      profile: 'platform',
      at: new Date().toISOString(),
      healthy: s.healthy,
      problems: s.problems,
      members: s.members.map((m) => ({ name: m.name, host: m.host, role: m.role, state: m.state, timeline: m.timeline, lagBytes: m.lagBytes })),
      etcd: s.etcd.map((e) => ({ name: e.name, healthy: e.healthy, leader: e.leader })),
      routes: { ...routes, lastChangeAt },
      decisions,
      prometheus,
      chaos: null,
      pooler: null,
    };
  };
}
