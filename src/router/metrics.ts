// Prometheus metrics for the router (prom-client), on its own registry.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface RouterMetrics {
  registry: Registry;
  /** 1 for the member currently routed as primary, 0 for the others seen. */
  leader: Gauge<'member'>;
  routingChanges: Counter<'sink'>;
  /** From the leader key changing (as the watch reported it) to every sink routing to the new leader. */
  convergence: Histogram;
  errors: Counter<'kind'>;
  cycles: Counter<'outcome'>;
  /** Dead leaders' locks ended early (released) or left to Patroni because the lock changed (unchanged: false). */
  deadLeaderReleases: Counter<'outcome'>;
  /** When each certificate the router was told about expires (the alert GardenOSCertificateExpiringSoon reads it). */
  certificateExpiry: Gauge<'file' | 'subject'>;
}

export function createMetrics(): RouterMetrics {
  const registry = new Registry();
  return {
    registry,
    leader: new Gauge({
      name: 'gardenos_router_primary',
      help: 'Member the primary route points at (1), others 0',
      labelNames: ['member'],
      registers: [registry],
    }),
    routingChanges: new Counter({
      name: 'gardenos_router_routing_changes_total',
      help: 'Routing changes applied, by sink',
      labelNames: ['sink'],
      registers: [registry],
    }),
    convergence: new Histogram({
      name: 'gardenos_router_leader_change_to_route_seconds',
      help: 'Time from a leader key change to the sinks routing to the new leader',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'gardenos_router_errors_total',
      help: 'Errors by kind (dcs, sink, probe, certificate, bug)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    cycles: new Counter({ name: 'gardenos_router_cycles_total', help: 'Control-loop cycles by outcome', labelNames: ['outcome'], registers: [registry] }),
    deadLeaderReleases: new Counter({
      name: 'gardenos_router_dead_leader_releases_total',
      help: "Dead leaders' locks the router ended early (outcome=released) or found changed and left to Patroni (outcome=changed)",
      labelNames: ['outcome'],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'gardenos_certificate_expiry_timestamp_seconds',
      help: 'When a certificate GardenOS issued expires (Unix time)',
      labelNames: ['file', 'subject'],
      registers: [registry],
    }),
  };
}
