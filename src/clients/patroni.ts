// Patroni's REST API over HTTPS (the cluster CA), with basic auth for the
// unsafe endpoints. Health endpoints answer 200 or 503; anything else, or no
// answer, is mapped to a GardenError at this edge.
import { readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import { describe, GardenError } from '../errors.ts';

export interface PatroniMemberView {
  name: string;
  role: 'leader' | 'replica' | 'sync_standby' | 'standby_leader' | string;
  state: string;
  host?: string;
  port?: number;
  api_url?: string;
  timeline?: number;
  /** Bytes behind the leader; Patroni says "unknown" when it cannot tell. */
  lag?: number | string;
  tags?: Record<string, unknown>;
}

export interface PatroniClusterView {
  members: PatroniMemberView[];
  scope?: string;
  pause?: boolean;
}

export interface PatroniHttpResult {
  status: number;
  body: string;
}

export interface PatroniClientOptions {
  caFile: string;
  auth?: { username: string; password: string };
  timeoutMs?: number;
}

export class PatroniClient {
  readonly baseUrl: string;
  /** Parsed once: a CA passed per request would build a new TLS context for every probe. */
  private readonly tls: SecureContext;
  private readonly auth: string | undefined;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, opts: PatroniClientOptions) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.tls = createSecureContext({ ca: readFileSync(opts.caFile) });
    this.auth = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : undefined;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** One request; resolves with any HTTP status, rejects only when there is no answer. */
  call(method: string, path: string, body?: unknown): Promise<PatroniHttpResult> {
    const url = new URL(path, `${this.baseUrl}/`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          secureContext: this.tls,
          timeout: this.timeoutMs,
          agent: false,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
            ...(this.auth && method !== 'GET' ? { authorization: this.auth } : {}),
          },
          // Handed through to tls.connect(); @types/node leaves it out of https.RequestOptions.
        } as RequestOptions & { secureContext: SecureContext },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => reject(new GardenError('BACKEND_UNAVAILABLE', `Patroni API ${this.baseUrl} ${method} ${path}: ${describe(e)}`, { cause: e })));
      req.end(payload);
    });
  }

  private async json<T>(path: string): Promise<T> {
    const res = await this.call('GET', path);
    try {
      return JSON.parse(res.body) as T;
    } catch {
      throw new GardenError('BACKEND_UNAVAILABLE', `Patroni API ${this.baseUrl}${path} answered ${res.status} without JSON`);
    }
  }

  cluster(): Promise<PatroniClusterView> {
    return this.json('/cluster');
  }

  patroni(): Promise<Record<string, unknown>> {
    return this.json('/patroni');
  }

  /** Whether a health endpoint (/primary, /replica, /health …) answers 200. */
  async check(path: string): Promise<boolean> {
    return (await this.call('GET', path)).status === 200;
  }
}
