// The workload of a fault test: writers (one connection per client) that insert
// sequenced rows through an endpoint, record every commit the server acknowledged
// and every failed statement, and on any error reconnect and go on. Rows carry the server's own clock and address,
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
  /** The longest a single statement waited for its answer (acknowledged or failed), ms. */
  longestStatementMs: number;
}

export interface WriterOptions {
  /** Concurrent clients, one connection each (default 1). */
  clients?: number;
  /** The client's own deadline per statement (default 2 s: a frozen primary must not hang the writer). */
  statementTimeoutMs?: number;
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
  private readonly opts: Required<WriterOptions>;
  private stopped = false;
  private seq = 0;
  private loop: Promise<unknown> | undefined;
  readonly result: WriterResult = { acks: [], errors: [], attempts: 0, longestStatementMs: 0 };

  constructor(uri: string, t0: number, opts: WriterOptions = {}) {
    this.uri = uri;
    this.t0 = t0;
    this.opts = { clients: opts.clients ?? 1, statementTimeoutMs: opts.statementTimeoutMs ?? 2000 };
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    this.loop = Promise.all(Array.from({ length: this.opts.clients }, () => this.run()));
  }

  async stop(): Promise<WriterResult> {
    this.stopped = true;
    await this.loop;
    return this.result;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // A frozen primary must not hang the writer: every step has a deadline.
      const client = new pg.Client({ connectionString: this.uri, connectionTimeoutMillis: 1000, query_timeout: this.opts.statementTimeoutMs, keepAlive: true });
      client.on('error', () => undefined); // a dropped connection surfaces on the next query
      let sentAt: number | undefined;
      try {
        await client.connect();
        while (!this.stopped) {
          const seq = ++this.seq; // one sequence for every client: the verdict needs each row once
          this.result.attempts++;
          sentAt = this.now();
          await client.query(`INSERT INTO ${CHAOS_TABLE} (seq) VALUES ($1)`, [seq]);
          const at = this.now();
          this.result.longestStatementMs = Math.max(this.result.longestStatementMs, at - sentAt);
          sentAt = undefined;
          this.result.acks.push({ seq, at });
        }
      } catch (e) {
        const at = this.now();
        if (sentAt !== undefined) this.result.longestStatementMs = Math.max(this.result.longestStatementMs, at - sentAt);
        this.result.errors.push({ at, message: describe(e) });
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        // end() waits for the server to close; a frozen server never does.
        await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
      }
    }
  }
}
