// Patroni's REST API over HTTPS (the cluster CA), with basic auth for the
// unsafe endpoints. Health endpoints answer 200 or 503; anything else, or no
// answer, is mapped to a GardenError at this edge.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { describe, GardenError } from '../errors.ts';
import { request } from '../util/http.ts';

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

export interface PatroniSelf {
  state: string;
  role: string;
  postmaster_start_time?: string;
  timeline?: number;
  patroni?: { version: string; scope: string };
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
  async call(method: string, path: string, body?: unknown): Promise<PatroniHttpResult> {
    try {
      return await request(new URL(path, `${this.baseUrl}/`), {
        method,
        body,
        timeoutMs: this.timeoutMs,
        secureContext: this.tls,
        headers: this.auth && method !== 'GET' ? { authorization: this.auth } : {},
      });
    } catch (e) {
      throw new GardenError('BACKEND_UNAVAILABLE', `Patroni API ${this.baseUrl} ${method} ${path}: ${describe(e)}`, { cause: e });
    }
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

  /** This member's own view of itself (GET /patroni). */
  self(): Promise<PatroniSelf> {
    return this.json('/patroni');
  }

  /** Whether a health endpoint (/primary, /replica, /health …) answers 200. */
  async check(path: string): Promise<boolean> {
    return (await this.call('GET', path)).status === 200;
  }
}

/** A member whose PostgreSQL runs: a primary says "running", a replica "running" (Patroni 3.0) or "streaming" (Patroni >= 3.0.4). */
export const memberRunning = (m: Pick<PatroniMemberView, 'state'> | undefined): boolean => m?.state === 'running' || m?.state === 'streaming';

/**
 * The leader's name when a cluster view shows a cluster ready for work: exactly one running
 * leader, every expected member running, and a running synchronous standby when one is required.
 */
export function readyLeader(view: PatroniClusterView, expected: { members: number; synchronous: boolean }): string | undefined {
  const leaders = view.members.filter((m) => m.role === 'leader' && memberRunning(m));
  if (leaders.length !== 1 || view.members.length !== expected.members || !view.members.every(memberRunning)) return undefined;
  if (expected.synchronous && !view.members.some((m) => m.role === 'sync_standby' && memberRunning(m))) return undefined;
  return leaders[0]!.name;
}
