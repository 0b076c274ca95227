// PgBouncer's admin console (the virtual database "pgbouncer"), over its Unix
// socket: PAUSE, RESUME and the SHOW lists. Simple-query protocol only, as the
// console requires; every command has a deadline (PAUSE waits for transactions
// in flight, and one that never ends must not hang the caller).
import pg from 'pg';
import { describe, GardenError } from '../errors.ts';
import { withTimeout } from '../util/wait.ts';

export interface PoolerAddress {
  socketDir: string;
  port: number;
  user: string;
  password: string;
}

export interface PoolerDatabase {
  name: string;
  host: string;
  port: number;
  paused: boolean;
  currentConnections: number;
}

export class PgbouncerAdmin {
  private readonly client: pg.Client;

  private constructor(client: pg.Client) {
    this.client = client;
  }

  static async connect(a: PoolerAddress, timeoutMs = 2000): Promise<PgbouncerAdmin> {
    const client = new pg.Client({
      host: a.socketDir,
      port: a.port,
      user: a.user,
      password: a.password,
      database: 'pgbouncer',
      connectionTimeoutMillis: timeoutMs,
    });
    client.on('error', () => undefined); // surfaces on the next command
    try {
      await client.connect();
    } catch (e) {
      throw new GardenError('BACKEND_UNAVAILABLE', `PgBouncer admin console ${a.socketDir}/.s.PGSQL.${a.port}: ${describe(e)}`, { cause: e });
    }
    return new PgbouncerAdmin(client);
  }

  /** One admin command; rows as objects. */
  async command<T = Record<string, unknown>>(sql: string, timeoutMs = 10_000): Promise<T[]> {
    try {
      return (await withTimeout(this.client.query(sql), timeoutMs, `PgBouncer's ${sql}`)).rows as T[];
    } catch (e) {
      if (e instanceof GardenError) throw e;
      throw new GardenError('BACKEND_UNAVAILABLE', `PgBouncer ${sql}: ${describe(e)}`, { cause: e });
    }
  }

  async databases(): Promise<PoolerDatabase[]> {
    const rows = await this.command<{ name: string; host: string; port: number | string; paused: number | string; current_connections: number | string }>(
      'SHOW DATABASES',
    );
    return rows
      .filter((r) => r.name !== 'pgbouncer')
      .map((r) => ({ name: r.name, host: r.host, port: Number(r.port), paused: Number(r.paused) === 1, currentConnections: Number(r.current_connections) }));
  }

  async close(): Promise<void> {
    await Promise.race([this.client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
}
