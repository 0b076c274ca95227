// HAProxy's runtime API on its admin socket: `show stat` for backend states,
// and the commands the router uses to move traffic. One command per connection.
import { createConnection } from 'node:net';
import { describe, GardenError } from '../errors.ts';
import { request } from '../util/http.ts';

export interface HaproxyServerStat {
  proxy: string;
  server: string;
  /** UP, DOWN, MAINT, DRAIN, "no check" … as HAProxy reports it. */
  status: string;
  checkStatus: string;
  currentSessions: number;
}

export class HaproxyClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(socketPath: string, opts: { timeoutMs?: number } = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  command(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(this.socketPath);
      const chunks: Buffer[] = [];
      sock.setTimeout(this.timeoutMs, () => sock.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      sock.on('connect', () => sock.end(`${cmd}\n`));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      sock.on('error', (e) =>
        reject(
          new GardenError('BACKEND_UNAVAILABLE', `HAProxy admin socket ${this.socketPath}: ${describe(e)}`, {
            hint: 'is HAProxy running? `gardenos local status`',
            cause: e,
          }),
        ),
      );
    });
  }

  async stats(): Promise<HaproxyServerStat[]> {
    return parseShowStat(await this.command('show stat'));
  }
}

/** The same table from the authenticated stats page (`<url>;csv`), for an HAProxy on another host. */
export async function statsOverHttp(url: string, auth: { user: string; password: string }, timeoutMs: number): Promise<HaproxyServerStat[]> {
  const r = await request(`${url.replace(/\/?$/, '/')};csv`, {
    timeoutMs,
    headers: { authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` },
  });
  if (r.status !== 200) throw new GardenError('BACKEND_UNAVAILABLE', `HAProxy stats ${url} answered ${r.status}`);
  return parseShowStat(r.body);
}

export function parseShowStat(csv: string): HaproxyServerStat[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift()?.replace(/^# /, '').split(',') ?? [];
  const col = (name: string) => header.indexOf(name);
  const [px, sv, st, chk, scur] = [col('pxname'), col('svname'), col('status'), col('check_status'), col('scur')];
  return lines
    .map((l) => l.split(','))
    .filter((f) => f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND')
    .map((f) => ({ proxy: f[px] ?? '', server: f[sv] ?? '', status: f[st] ?? '', checkStatus: f[chk] ?? '', currentSessions: Number(f[scur] ?? 0) }));
}
