// One HTTP(S) request with a deadline, for the clients that speak JSON over
// HTTP: Patroni's REST API, etcd's v3 gateway, the router's /status. node:http(s)
// rather than fetch: fetch's first call costs ~45 ms of start-up, a sixth of
// `status`'s budget. TLS settings come as a SecureContext built once per client:
// certificates passed per request would build a new context for every probe.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { SecureContext } from 'node:tls';

export interface HttpOptions {
  method?: string;
  /** Sent as JSON when given. */
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs: number;
  secureContext?: SecureContext;
}

export interface HttpResponse {
  status: number;
  body: string;
}

/**
 * Resolves with any HTTP status; rejects only when there is no whole answer within `timeoutMs`.
 * The deadline covers connect, TLS handshake and body together (a socket's idle timeout does not:
 * a frozen peer that accepted the connection held a request twice as long).
 */
export function request(url: string | URL, opts: HttpOptions): Promise<HttpResponse> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A) => {
        clearTimeout(timer);
        fn(...a);
      };
    resolve = settle(resolve);
    reject = settle(reject);
    const req = send(
      target,
      {
        method: opts.method ?? 'GET',
        agent: false,
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...opts.headers },
        // Handed through to tls.connect(); @types/node leaves it out of https.RequestOptions.
        ...(opts.secureContext ? { secureContext: opts.secureContext } : {}),
      } as RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    timer = setTimeout(() => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    req.on('error', reject);
    req.end(payload);
  });
}

export async function getJson<T>(url: string, timeoutMs: number): Promise<{ status: number; body: T }> {
  const res = await request(url, { timeoutMs });
  return { status: res.status, body: JSON.parse(res.body) as T };
}
