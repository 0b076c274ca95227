// The workload of a fault test: one writer that inserts sequenced rows through
// the primary endpoint, records every commit the server acknowledged, and on any
// error reconnects and goes on. Rows carry the server's own clock and address,
// so the verdict can tell which node accepted which write, and when.
import pg from 'pg';
import { describe } from '../errors.ts';

export interface Ack {
  seq: number;
  /** Milliseconds since the run started, when the client saw the commit acknowledged. */
  at: number;
}

export interface WriteError {
  at: number;
  message: string;
}

export interface WriterResult {
  acks: Ack[];
  errors: WriteError[];
  attempts: number;
}

export const CHAOS_TABLE = 'gardenos_chaos_writes';

export async function prepareTable(uri: string): Promise<void> {
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${CHAOS_TABLE}`);
    await client.query(`CREATE TABLE ${CHAOS_TABLE} (
      seq bigint PRIMARY KEY,
      node text NOT NULL DEFAULT host(inet_server_addr()),
      ts timestamptz NOT NULL DEFAULT clock_timestamp()
    )`);
  } finally {
    await client.end();
  }
}

export class Writer {
  private readonly uri: string;
  private readonly t0: number;
  private stopped = false;
  private loop: Promise<void> | undefined;
  readonly result: WriterResult = { acks: [], errors: [], attempts: 0 };

  constructor(uri: string, t0: number) {
    this.uri = uri;
    this.t0 = t0;
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<WriterResult> {
    this.stopped = true;
    await this.loop;
    return this.result;
  }

  private async run(): Promise<void> {
    let seq = 0;
    while (!this.stopped) {
      // A frozen primary must not hang the writer: every step has a deadline.
      const client = new pg.Client({ connectionString: this.uri, connectionTimeoutMillis: 1000, query_timeout: 2000, keepAlive: true });
      client.on('error', () => undefined); // a dropped connection surfaces on the next query
      try {
        await client.connect();
        while (!this.stopped) {
          seq++;
          this.result.attempts++;
          await client.query(`INSERT INTO ${CHAOS_TABLE} (seq) VALUES ($1)`, [seq]);
          this.result.acks.push({ seq, at: this.now() });
        }
      } catch (e) {
        this.result.errors.push({ at: this.now(), message: describe(e) });
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        // end() waits for the server to close; a frozen server never does.
        await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
      }
    }
  }
}
