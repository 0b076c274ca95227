// The router's HTTP endpoints: /healthz (the process and its loop are alive),
// /readyz (the last cycle succeeded recently), /metrics (Prometheus), /status (JSON).
import { createServer, type Server } from 'node:http';
import type { Router } from './controller.ts';
import type { RouterMetrics } from './metrics.ts';

/** `problem`: what keeps the router from doing its job beside its control loop (its Lease cannot be read, say). */
export function startRouterServer(
  router: Router,
  metrics: RouterMetrics,
  listen: { host: string; port: number },
  recheckIntervalMs: number,
  problem: () => string | undefined = () => undefined,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const fresh = Date.now() - router.state.lastCycleAt < Math.max(3 * recheckIntervalMs, 5000);
    switch (path) {
      case '/healthz':
        return send(fresh ? 200 : 503, fresh ? 'ok\n' : 'control loop stalled\n');
      case '/readyz': {
        const p = problem();
        return send(fresh && router.state.lastCycleOk && !p ? 200 : 503, `${p ? `${p}; ` : ''}${router.state.lastDecision}\n`);
      }
      case '/status':
        return send(
          200,
          JSON.stringify({
            primary: router.state.route.primary,
            replicas: router.state.route.replicas,
            lastDecision: router.state.lastDecision,
            lastChangeAt: router.state.lastChangeAt,
            watching: router.state.watching,
            ready: fresh && router.state.lastCycleOk,
          }),
          'application/json',
        );
      case '/metrics':
        metrics.registry.metrics().then(
          (text) => send(200, text, metrics.registry.contentType),
          (e: Error) => send(500, e.message),
        );
        return;
      default:
        return send(404, 'not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}
