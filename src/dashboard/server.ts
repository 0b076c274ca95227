// The dashboard's web server: the page and its two static files, the current view as JSON, and the
// same view pushed to every open page as server-sent events whenever it changes. Binds to loopback by
// default; anywhere else a token is required (a header, or once in the URL, then an HttpOnly cookie).
// A strict Content-Security-Policy (nothing inline, nothing from another origin: it works offline) and a
// Host check (a loopback dashboard answers only to its own names, so a web page cannot rebind a DNS name to it).
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, GardenError } from '../errors.ts';
import type { DashboardView } from './view.ts';

const STATIC = fileURLToPath(new URL('./static/', import.meta.url));
const FILES: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const COOKIE = 'gardenos_dashboard';
const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface DashboardOptions {
  host: string;
  port: number;
  /** Required on every request when set (always set when `host` is not loopback). */
  token?: string;
  /** How often the source is asked for a new view. */
  intervalMs: number;
  /** Where `local chaos` writes its reports; their charts are served from it. */
  chaosDir?: string;
}

export interface Dashboard {
  url: string;
  /** The newest view (after the first poll). */
  view(): DashboardView | undefined;
  close(): Promise<void>;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));

export async function startDashboard(source: () => Promise<DashboardView>, opts: DashboardOptions): Promise<Dashboard> {
  if (!isLoopback(opts.host) && !opts.token) {
    throw new GardenError('CONFIG_INVALID', `the dashboard on ${opts.host} would be open to anyone who reaches that address`, {
      hint: 'bind it to 127.0.0.1 (the default), or give it a token (--token-file)',
    });
  }
  const hostName = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  // Filled in once the port is known (0 asks the kernel for one).
  const allowedHosts = new Set<string>();
  const anyHost = opts.host === '0.0.0.0' || opts.host === '::';
  const clients = new Set<ServerResponse>();
  let current: DashboardView | undefined;
  let currentJson = '';
  let currentKey = '';
  let closed = false;

  const authorized = (req: IncomingMessage, url: URL): 'ok' | 'set-cookie' | false => {
    if (!opts.token) return 'ok';
    const expected = Buffer.from(opts.token);
    const same = (given: string | undefined) =>
      given !== undefined && Buffer.byteLength(given) === expected.length && timingSafeEqual(Buffer.from(given), expected);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const cookie = (req.headers.cookie ?? '')
      .split(/;\s*/)
      .find((c) => c.startsWith(`${COOKIE}=`))
      ?.slice(COOKIE.length + 1);
    if (same(bearer) || same(cookie)) return 'ok';
    if (same(url.searchParams.get('token') ?? undefined)) return 'set-cookie';
    return false;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const send = (status: number, body: string | Buffer, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}) => {
      res.writeHead(status, { ...HEADERS, 'content-type': type, ...extra });
      res.end(body);
    };
    if (!anyHost && !allowedHosts.has(req.headers.host ?? ''))
      return send(403, `unexpected Host ${req.headers.host ?? '(none)'}: open ${[...allowedHosts][0]}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET\n', undefined, { allow: 'GET, HEAD' });
    const auth = authorized(req, url);
    if (!auth) return send(401, 'a token is required: open the URL `gardenos dashboard` printed, or send Authorization: Bearer <token>\n');
    if (auth === 'set-cookie') {
      // The token leaves the address bar (and the history) at once; the cookie carries it from now on.
      return send(303, '', undefined, { location: url.pathname, 'set-cookie': `${COOKIE}=${opts.token}; HttpOnly; SameSite=Strict; Path=/` });
    }
    const file = FILES[url.pathname];
    if (file) {
      readFile(join(STATIC, file)).then(
        (body) => send(200, body, TYPES[file.split('.').pop()!]),
        (e: unknown) => send(500, describe(e)),
      );
      return;
    }
    if (url.pathname === '/healthz') return send(200, 'ok\n');
    if (url.pathname === '/api/view') return current ? send(200, currentJson, 'application/json') : send(503, 'the first view is being taken\n');
    if (url.pathname === '/events') {
      res.writeHead(200, { ...HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      if (current) res.write(`event: view\ndata: ${currentJson}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    const chart = /^\/chaos\/([\w.-]+)\/([\w.-]+\.svg)$/.exec(url.pathname);
    if (chart && opts.chaosDir && !chart[1]!.startsWith('.')) {
      readFile(join(opts.chaosDir, chart[1]!, chart[2]!)).then(
        (body) => send(200, body, 'image/svg+xml'),
        () => send(404, 'no such chart\n'),
      );
      return;
    }
    return send(404, 'not found\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE' ? new GardenError('PORT_IN_USE', `${hostName}:${opts.port} is already in use`, { hint: 'choose another with --port' }) : e,
      ),
    );
    server.listen(opts.port, opts.host, resolve);
  });

  // The poll loop: a new view is pushed only when something in it changed (its timestamp aside).
  const loop = (async () => {
    while (!closed) {
      try {
        const view = await source();
        const key = JSON.stringify({ ...view, at: undefined });
        if (key !== currentKey) {
          current = view;
          currentKey = key;
          currentJson = JSON.stringify(view);
          for (const c of clients) c.write(`event: view\ndata: ${currentJson}\n\n`);
        }
      } catch {
        // The source degrades its own parts; a failure of the whole is retried on the next tick.
      }
      await sleep(opts.intervalMs);
    }
  })();
  // Comments keep proxies and the browser from closing an idle stream.
  const heartbeat = setInterval(() => {
    for (const c of clients) c.write(': keep-alive\n\n');
  }, 15_000);

  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  for (const h of [hostName, ...(isLoopback(opts.host) ? ['localhost', '127.0.0.1'] : [])]) allowedHosts.add(`${h}:${port}`);
  return {
    url: `http://${hostName}:${port}/`,
    view: () => current,
    async close() {
      closed = true;
      clearInterval(heartbeat);
      for (const c of clients) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await loop;
    },
  };
}
