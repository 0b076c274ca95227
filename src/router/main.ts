// `gardenos router`: wires the etcd client, the DCS view, the Patroni probe,
// the sinks, metrics and the HTTP endpoints together and runs until signalled.
import { EtcdClient } from '../clients/etcd.ts';
import { Router } from './controller.ts';
import { PatroniDcs } from './dcs.ts';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createMetrics, type RouterMetrics } from './metrics.ts';
import { DeadLeaderWatch } from './deadleader.ts';
import { patroniObserver, patroniProbe } from './probe.ts';
import { startRouterServer } from './server.ts';
import type { RouterSettings } from './settings.ts';
import { HaproxySink } from './sinks/haproxy.ts';
import type { RouteSink } from './sinks/types.ts';

export interface RunningRouter {
  router: Router;
  stop(): Promise<void>;
}

/** Sets each certificate's expiry; a file that cannot be read or parsed is counted and logged, its series removed. */
export async function readCertificateExpiry(files: readonly string[], metrics: RouterMetrics, log: (line: string) => void): Promise<void> {
  metrics.certificateExpiry.reset();
  for (const file of files) {
    try {
      const cert = new X509Certificate(await readFile(file));
      metrics.certificateExpiry.set({ file, subject: cert.subject.replaceAll('\n', ', ') }, Math.floor(Date.parse(cert.validTo) / 1000));
    } catch (e) {
      metrics.errors.inc({ kind: 'certificate' });
      log(JSON.stringify({ ts: new Date().toISOString(), error: `certificate ${file}: ${(e as Error).message}` }));
    }
  }
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
  if (settings.pooler) (await import('./pooler.ts')).poolerMetrics(metrics.registry, settings.pooler, log);
  const dcs = new PatroniDcs(etcd, settings.namespace, settings.scope);
  const dl = settings.deadLeader;
  const deadLeader = dl?.enabled
    ? new DeadLeaderWatch({
        observer: patroniObserver(settings.patroniCa, dl.probeTimeoutMs),
        release: (leader, revision) => dcs.releaseLeader(leader, revision),
        confirmMs: dl.confirmMs,
        intervalMs: dl.intervalMs,
        report: (e) => {
          metrics.deadLeaderReleases.inc({ outcome: e.released ? 'released' : 'changed' });
          router.note(e.reason, e.released ? [`etcd: deleted ${e.leader}'s leader key`] : []);
          router.trigger();
        },
      })
    : undefined;
  const router = new Router({
    dcs,
    probe: patroniProbe(settings.patroniCa),
    ...(deadLeader ? { deadLeader } : {}),
    sinks,
    metrics,
    maxLagBytes: settings.replicaMaxLagBytes,
    recheckIntervalMs: settings.recheckIntervalMs,
    ...(mayWrite ? { mayWrite } : {}),
    log: (entry) => log(JSON.stringify(entry)),
  });
  const server = await startRouterServer(router, metrics, settings.listen, settings.recheckIntervalMs, () => leaseProblem?.());
  router.start();
  // Certificates change only when GardenOS re-issues them: read at start and hourly.
  const reportCertificates = () => void readCertificateExpiry(settings.certificates, metrics, log);
  reportCertificates();
  const certificateTimer = setInterval(reportCertificates, 3_600_000);
  certificateTimer.unref();
  return {
    router,
    async stop() {
      clearInterval(certificateTimer);
      await router.stop();
      for (const c of closers) await c();
      await new Promise((r) => server.close(r));
      etcd.close();
    },
  };
}
