// A thin typed edge over the etcd v3 API with mutual TLS. Keys and watches go
// through the `etcd3` gRPC client; the per-member status probe
// uses etcd's own v3 JSON gateway instead, because loading gRPC and its protobuf
// definitions costs ~170 ms — more than half of `status`'s 300 ms budget — and
// a probe needs one request. Errors are mapped to one GardenError kind here and
// never leak upward raw. No retries: a probe must answer or fail fast.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Etcd3, IOptions } from 'etcd3';
import { describe, GardenError } from '../errors.ts';
import { request } from '../util/http.ts';

/** The PEM files of a client identity: the CA that signed etcd's certificates, and this client's certificate and key. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

export interface EtcdEndpointStatus {
  endpoint: string;
  ok: boolean;
  error?: string;
  memberId?: string;
  leaderId?: string;
  isLeader?: boolean;
  version?: string;
  dbSizeBytes?: number;
  raftTerm?: string;
}

export interface EtcdClientOptions {
  /** Per-call deadline. */
  timeoutMs?: number;
  /**
   * Long-running users (the router) retry a call on another member and skip a
   * failing one for a while (etcd3's defaults); probes (the default) fail fast.
   */
  resilient?: boolean;
}

export interface EtcdWatchHandlers {
  /** A key under the prefix changed; `revision` is the change's store revision. */
  onChange(key: string, value: string | null, revision: string): void;
  /** The watch stream was lost (member restart, network) or cancelled (compaction); changes may have been missed. */
  onInterrupted(reason: string): void;
  /** The watch stream is (re-)established. */
  onConnected(): void;
}

export interface EtcdWatch {
  close(): Promise<void>;
}

function credentials(tls: EtcdTls): NonNullable<IOptions['credentials']> {
  return { rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) };
}

export class EtcdClient {
  readonly endpoints: readonly string[];
  private readonly creds: NonNullable<IOptions['credentials']>;
  /** The same credentials for the JSON gateway, built once. */
  private readonly tls: SecureContext;
  private readonly timeoutMs: number;
  private readonly resilient: boolean;
  private pooled: Promise<Etcd3> | undefined;

  constructor(endpoints: readonly string[], tls: EtcdTls, opts: EtcdClientOptions = {}) {
    this.endpoints = endpoints;
    this.creds = credentials(tls);
    this.tls = createSecureContext({ ca: this.creds.rootCertificate, cert: this.creds.certChain, key: this.creds.privateKey });
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.resilient = opts.resilient ?? false;
  }

  /** The gRPC client for the whole cluster (any member may answer), loaded on first use. */
  raw(): Promise<Etcd3> {
    this.pooled ??= Promise.all([import('etcd3'), import('cockatiel')]).then(
      ([{ Etcd3 }, { noop, ExponentialBackoff }]) =>
        new Etcd3({
          hosts: [...this.endpoints],
          credentials: this.creds,
          dialTimeout: this.timeoutMs,
          // A deadline for each call, but never for a stream: a watch lives as long as the router.
          defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
          // A lost watch stream is re-opened within a second, not etcd3's default of up to 30 s
          // (etcd3 takes the factory and calls next() itself, though its type names the product).
          faultHandling: this.resilient
            ? { watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) as never }
            : { host: () => noop, global: noop },
        }),
    );
    return this.pooled;
  }

  /** One call to a member's v3 JSON gateway (what etcdctl's --endpoints would reach). */
  private async gateway<T>(endpoint: string, path: string, body: unknown): Promise<T> {
    const res = await request(new URL(path, endpoint), { method: 'POST', body, timeoutMs: this.timeoutMs, secureContext: this.tls });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
    return JSON.parse(res.body) as T;
  }

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new GardenError('BACKEND_UNAVAILABLE', `etcd ${what} failed: ${describe(e)}`, {
        hint: `check that etcd answers on ${this.endpoints.join(', ')} and that the client certificate is trusted`,
        cause: e,
      });
    }
  }

  async status(endpoint: string): Promise<EtcdEndpointStatus> {
    try {
      const s = await this.gateway<{ header: { member_id: string }; leader: string; version: string; dbSize: string; raftTerm: string }>(
        endpoint,
        '/v3/maintenance/status',
        {},
      );
      return {
        endpoint,
        ok: true,
        memberId: s.header.member_id,
        leaderId: s.leader,
        isLeader: s.header.member_id === s.leader,
        version: s.version,
        dbSizeBytes: Number(s.dbSize),
        raftTerm: s.raftTerm,
      };
    } catch (e) {
      return { endpoint, ok: false, error: describe(e) };
    }
  }

  async statuses(): Promise<EtcdEndpointStatus[]> {
    return Promise.all(this.endpoints.map((e) => this.status(e)));
  }

  async get(key: string): Promise<string | null> {
    return this.guard(`get ${key}`, async () => (await this.raw()).get(key).string());
  }

  async put(key: string, value: string): Promise<void> {
    await this.guard(`put ${key}`, async () => (await this.raw()).put(key).value(value).exec());
  }

  async delete(key: string): Promise<void> {
    await this.guard(`delete ${key}`, async () => (await this.raw()).delete().key(key).exec());
  }

  /** Watches every key under `prefix` from `startRevision` on (the revision after a read, so nothing is missed). */
  async watchPrefix(prefix: string, startRevision: string, handlers: EtcdWatchHandlers): Promise<EtcdWatch> {
    const client = await this.raw();
    const watcher = await this.guard(`watch ${prefix}*`, () => client.watch().prefix(prefix).startRevision(startRevision).create());
    watcher.on('put', (kv, _prev) => handlers.onChange(kv.key.toString(), kv.value.toString(), kv.mod_revision));
    watcher.on('delete', (kv) => handlers.onChange(kv.key.toString(), null, kv.mod_revision));
    watcher.on('disconnected', (e: Error) => handlers.onInterrupted(`watch stream lost: ${describe(e)}`));
    watcher.on('connected', () => handlers.onConnected());
    watcher.on('error', (e: Error) => handlers.onInterrupted(`watch cancelled: ${describe(e)}`));
    return { close: () => watcher.cancel() };
  }

  /** Every key under `prefix`, each key's own mod revision, and the store revision the read saw. */
  async readPrefix(prefix: string): Promise<{ revision: string; kvs: Record<string, string>; modRevisions: Record<string, string> }> {
    return this.guard(`get ${prefix}*`, async () => {
      const res = await (await this.raw()).getAll().prefix(prefix).exec();
      const kvs: Record<string, string> = {};
      const modRevisions: Record<string, string> = {};
      for (const kv of res.kvs) {
        kvs[kv.key.toString()] = kv.value.toString();
        modRevisions[kv.key.toString()] = kv.mod_revision;
      }
      return { revision: res.header.revision, kvs, modRevisions };
    });
  }

  /**
   * Deletes `key` in one transaction only while it still holds `value` at `modRevision` (what the
   * caller saw); resolves whether it did. Any write to the key since — a renewal is one — makes it a no-op.
   */
  async deleteIfUnchanged(key: string, value: string, modRevision: string): Promise<boolean> {
    return this.guard(`delete ${key} at revision ${modRevision}`, async () => {
      const client = await this.raw();
      const res = await client.if(key, 'Mod', '==', modRevision).and(key, 'Value', '==', value).then(client.delete().key(key)).commit();
      return res.succeeded;
    });
  }

  close(): void {
    void this.pooled?.then(
      (c) => c.close(),
      () => undefined,
    );
    this.pooled = undefined;
  }
}
