// `gardenos router`: wires the etcd client, the DCS view, the Patroni probe,
// the sinks, metrics and the HTTP endpoints together and runs until signalled.
import { EtcdClient } from '../clients/etcd.ts';
import { Router } from './controller.ts';
import { PatroniDcs } from './dcs.ts';
import { createMetrics } from './metrics.ts';
import { patroniProbe } from './probe.ts';
import { startRouterServer } from './server.ts';
import type { RouterSettings } from './settings.ts';
import { HaproxySink } from './sinks/haproxy.ts';
import type { RouteSink } from './sinks/types.ts';

export interface RunningRouter {
  router: Router;
  stop(): Promise<void>;
}

export async function startRouter(settings: RouterSettings, log: (line: string) => void): Promise<RunningRouter> {
  const etcd = new EtcdClient(settings.etcd.endpoints, settings.etcd.tls, { resilient: true, timeoutMs: 2000 });
  const sinks: RouteSink[] = [];
  const closers: (() => Promise<void>)[] = [];
  let mayWrite: (() => boolean) | undefined;
  let leaseProblem: (() => string | undefined) | undefined;
  for (const s of settings.sinks) {
    if (s.type === 'haproxy') sinks.push(new HaproxySink(s));
    else {
      const { KubernetesSink, LeaseHolder, routerKubeConfig } = await import('./sinks/kubernetes.ts');
      const kc = await routerKubeConfig(s.kubeconfig);
      if (s.lease) {
        const lease = new LeaseHolder(kc, s.namespace, s.lease.name, s.lease.durationSeconds);
        // Logged once per change — held, standby, or why the Lease cannot be read (then /readyz says so too).
        lease.start((e) => log(JSON.stringify({ ts: new Date().toISOString(), ...e })));
        mayWrite = () => lease.isHolder();
        leaseProblem = () => (lease.lastError ? `Kubernetes API: ${lease.lastError}` : undefined);
        closers.push(() => lease.stop());
      }
      sinks.push(new KubernetesSink(kc, { ...s, ...(mayWrite ? { mayWrite } : {}) }));
    }
  }
  const metrics = createMetrics();
  const router = new Router({
    dcs: new PatroniDcs(etcd, settings.namespace, settings.scope),
    probe: patroniProbe(settings.patroniCa),
    sinks,
    metrics,
    maxLagBytes: settings.replicaMaxLagBytes,
    recheckIntervalMs: settings.recheckIntervalMs,
    ...(mayWrite ? { mayWrite } : {}),
    log: (entry) => log(JSON.stringify(entry)),
  });
  const server = await startRouterServer(router, metrics, settings.listen, settings.recheckIntervalMs, () => leaseProblem?.());
  router.start();
  return {
    router,
    async stop() {
      await router.stop();
      for (const c of closers) await c();
      await new Promise((r) => server.close(r));
      etcd.close();
    },
  };
}
