// The dashboard's server on its own (the page in a real browser against a real cluster is in
// test/integration/monitoring.test.ts): views pushed as server-sent events only when they change, the
// token beyond loopback (header, or once in the URL then a cookie), the Host check, the CSP, and chart
// paths that cannot leave the chaos directory.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts';
import { platformRoutes } from '../../src/dashboard/platform.ts';
import { newestChaos, recordDecision, type DashboardView } from '../../src/dashboard/view.ts';
import type { PlatformStatus } from '../../src/platform/status.ts';

const view = (primary: string): DashboardView => ({
  cluster: 'unit',
  profile: 'local',
  at: new Date().toISOString(),
  healthy: true,
  problems: [],
  members: [{ name: primary, host: '127.0.0.1', role: 'leader', state: 'running', timeline: 1, lagBytes: 0 }],
  etcd: [],
  routes: { primary, replicas: [], lastChangeAt: null, source: 'router' },
  decisions: [],
  prometheus: { url: null, error: 'off' },
  chaos: null,
  pooler: null,
});

/** A GET with the given headers; the body as text. */
function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The first `n` view events of the /events stream. */
function events(port: number, n: number, headers: Record<string, string> = {}): Promise<DashboardView[]> {
  return new Promise((resolve, reject) => {
    const seen: DashboardView[] = [];
    const req = request({ host: '127.0.0.1', port, path: '/events', headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let buffer = '';
      res.on('data', (d: Buffer) => {
        buffer += d;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (block.includes('event: view') && data) seen.push(JSON.parse(data) as DashboardView);
          if (seen.length === n) {
            req.destroy();
            resolve(seen);
          }
        }
      });
    });
    req.on('error', (e) => (seen.length === n ? undefined : reject(e)));
    req.end();
  });
}

describe('dashboard server', () => {
  let primary = 'node1';
  let polls = 0;
  let open: Dashboard;
  let port: number;

  before(async () => {
    open = await startDashboard(
      async () => {
        polls++;
        return view(primary);
      },
      { host: '127.0.0.1', port: 0, intervalMs: 20 },
    );
    port = Number(new URL(open.url).port);
  });
  after(() => open.close());

  it('serves the page with a CSP that allows nothing inline and nothing from elsewhere', async () => {
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.match(r.body, /<h1>GardenOS/);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.doesNotMatch(r.body, /https?:\/\/(?!www\.w3\.org)/, 'no resource from another origin');
    assert.equal((await get(port, '/app.js')).status, 200);
  });

  it('pushes a view when it changes, not on every poll', async () => {
    const stream = events(port, 2);
    const before = polls;
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(polls - before >= 3, 'the source was polled several times');
    primary = 'node2';
    const [first, second] = await stream;
    assert.equal(first!.routes.primary, 'node1');
    assert.equal(second!.routes.primary, 'node2', 'the second event is the change, not a repeat of the first view');
  });

  it('refuses another Host (DNS rebinding) and anything but GET', async () => {
    assert.equal((await get(port, '/api/view', { host: 'attacker.example:80' })).status, 403);
    const post = await new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/view', method: 'POST', headers: { host: `127.0.0.1:${port}` } }, (res) =>
        resolve(res.statusCode ?? 0),
      );
      req.end();
    });
    assert.equal(post, 405);
  });

  it('beyond loopback: refuses to start without a token', async () => {
    await assert.rejects(
      startDashboard(async () => view('x'), { host: '0.0.0.0', port: 0, intervalMs: 1000 }),
      /open to anyone/,
    );
  });

  it('with a token: 401 without it, a cookie after it is given once in the URL, Bearer accepted', async () => {
    const token = 'a-token-of-enough-length';
    const d = await startDashboard(async () => view('n'), { host: '127.0.0.1', port: 0, intervalMs: 50, token });
    try {
      const p = Number(new URL(d.url).port);
      assert.equal((await get(p, '/api/view')).status, 401);
      assert.equal((await get(p, '/api/view', { authorization: 'Bearer wrong-token-of-same-size' })).status, 401);
      const first = await get(p, `/?token=${token}`);
      assert.equal(first.status, 303, 'the token leaves the URL');
      assert.equal(first.headers.location, '/');
      const cookie = String(first.headers['set-cookie']).split(';')[0]!;
      assert.match(String(first.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await get(p, '/api/view', { cookie })).status, 200);
      assert.equal((await get(p, '/api/view', { authorization: `Bearer ${token}` })).status, 200);
    } finally {
      await d.close();
    }
  });

  it('serves chaos charts from their directory only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gardenos-chaos-'));
    try {
      await mkdir(join(dir, '2026-11-30T12-00-00-000Z'));
      await writeFile(join(dir, '2026-11-30T12-00-00-000Z', 'primary-crash-1.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
      await writeFile(
        join(dir, '2026-11-30T12-00-00-000Z', 'primary-crash-1.json'),
        JSON.stringify({ scenario: 'primary-crash', fault: 'kill -9', verdict: { ok: true, outageMs: 20100, acknowledged: 500, lost: [] } }),
      );
      const d = await startDashboard(async () => view('n'), { host: '127.0.0.1', port: 0, intervalMs: 50, chaosDir: dir });
      try {
        const p = Number(new URL(d.url).port);
        const ok = await get(p, '/chaos/2026-11-30T12-00-00-000Z/primary-crash-1.svg');
        assert.equal(ok.status, 200);
        assert.equal(ok.headers['content-type'], 'image/svg+xml');
        assert.equal((await get(p, '/chaos/../secret.svg')).status, 404);
        assert.equal((await get(p, '/chaos/%2e%2e/x.svg')).status, 404);
      } finally {
        await d.close();
      }
      const chaos = await newestChaos(dir);
      assert.deepEqual(chaos?.runs, [
        {
          scenario: 'primary-crash',
          fault: 'kill -9',
          ok: true,
          outageMs: 20100,
          acknowledged: 500,
          lost: 0,
          chart: '2026-11-30T12-00-00-000Z/primary-crash-1.svg',
        },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the router decisions that differ, newest last, at most the limit', () => {
    let log = recordDecision([], 'leader n1', '2026-01-01T00:00:00Z');
    log = recordDecision(log, 'leader n1', '2026-01-01T00:00:01Z');
    assert.equal(log.length, 1);
    for (let i = 0; i < 30; i++) log = recordDecision(log, `leader n${i}`, null);
    assert.equal(log.length, 20);
    assert.equal(log.at(-1)!.text, 'leader n29');
  });

  it('platform routes: postgres-primary as Kubernetes routes it when known, else as HAProxy does; names, not addresses', () => {
    const member = (name: string, host: string, role: string) => ({ name, host, role, state: 'running', timeline: 1, lagBytes: 0, apiReachable: true });
    const stat = (proxy: string, server: string, status: string) => ({ proxy, server, status, checkStatus: 'L7OK', currentSessions: 0 });
    const s: PlatformStatus = {
      cluster: 'p',
      healthy: true,
      problems: [],
      etcd: [],
      members: [member('pg-0', '10.0.0.1', 'leader'), member('pg-1', '10.0.0.2', 'sync_standby'), member('pg-2', '10.0.0.3', 'replica')],
      haproxy: [
        { node: 'a', reachable: false, servers: [], error: 'refused' },
        {
          node: 'b',
          reachable: true,
          servers: [
            stat('postgres-primary', '10.0.0.1', 'UP'),
            stat('postgres-primary', '10.0.0.2', 'DOWN'),
            stat('postgres-replicas', '10.0.0.2', 'UP'),
            stat('postgres-replicas', '10.0.0.3', 'UP 1/2'),
          ],
        },
      ],
    };
    assert.deepEqual(platformRoutes(s), { primary: 'pg-0', replicas: ['pg-1', 'pg-2'], lastChangeAt: null, source: 'HAProxy on b' });
    const kube = { reachable: true, nodes: [], workloads: [] };
    assert.equal(platformRoutes({ ...s, kubernetes: { ...kube, primaryEndpoint: ['10.0.0.2'] } }).primary, 'pg-1', 'Kubernetes wins over HAProxy');
    assert.equal(platformRoutes({ ...s, kubernetes: { ...kube, primaryEndpoint: [] } }).primary, null, 'no endpoint: nobody');
    assert.equal(platformRoutes({ ...s, kubernetes: { ...kube, primaryEndpoint: ['10.0.0.1', '10.0.0.2'] } }).primary, null, 'two endpoints: not one primary');
  });
});
