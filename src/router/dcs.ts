// The coordination-store boundary, shaped like Patroni's dcs/: immutable
// snapshots of a scope's keys, parsed at the edge. The loop above sees a
// DcsSnapshot or a DcsUnavailable error, never a raw client error.
import type { EtcdClient, EtcdWatch } from '../clients/etcd.ts';
import { describe, GardenError } from '../errors.ts';

export interface DcsMember {
  name: string;
  /** Base URL of the member's Patroni REST API (https://host:8008). */
  apiUrl: string;
  host: string;
  port: number;
  role: string;
  state: string;
  timeline?: number;
  xlogLocation?: number;
}

export interface DcsSnapshot {
  revision: string;
  leader: string | null;
  /** The leader key's own mod revision: a conditional write on it fails if Patroni renewed the lock since. */
  leaderRevision?: string;
  members: readonly DcsMember[];
  initialized: boolean;
}

export class DcsUnavailable extends GardenError {
  constructor(message: string, cause?: unknown) {
    super('BACKEND_UNAVAILABLE', message, { cause });
  }
}

/**
 * Patroni's keys for a scope, the one place their layout is spelled out: everything under
 * `<namespace><scope>/`, and the keys GardenOS reads by name (the router, `dcs`, `doctor`, `up`).
 */
export function patroniKeys(namespace: string, scope: string): PatroniKeys {
  return keysUnder(`${namespace}${scope}/`);
}

export interface PatroniKeys {
  prefix: string;
  leader: string;
  initialize: string;
  /** The prefix of the member keys (one per member, named after it). */
  members: string;
}

const keysUnder = (prefix: string): PatroniKeys => ({ prefix, leader: `${prefix}leader`, initialize: `${prefix}initialize`, members: `${prefix}members/` });

/** Parses Patroni's keys under `<namespace><scope>/` into a snapshot. Malformed member values are skipped. */
export function parseSnapshot(
  prefix: string,
  revision: string,
  kvs: Readonly<Record<string, string>>,
  modRevisions: Readonly<Record<string, string>> = {},
): DcsSnapshot {
  const keys = keysUnder(prefix);
  const members: DcsMember[] = [];
  for (const [key, value] of Object.entries(kvs)) {
    if (!key.startsWith(keys.members)) continue;
    const name = key.slice(keys.members.length);
    try {
      const m = JSON.parse(value) as { api_url?: string; conn_url?: string; role?: string; state?: string; timeline?: number; xlog_location?: number };
      const api = new URL(m.api_url ?? '');
      const conn = new URL(m.conn_url ?? '');
      members.push({
        name,
        apiUrl: `${api.protocol}//${api.host}`,
        host: conn.hostname.replace(/^\[|\]$/g, ''),
        port: Number(conn.port || 5432),
        role: m.role ?? 'unknown',
        state: m.state ?? 'unknown',
        ...(m.timeline !== undefined ? { timeline: m.timeline } : {}),
        ...(m.xlog_location !== undefined ? { xlogLocation: m.xlog_location } : {}),
      });
    } catch {
      // A member key being rewritten or from another tool: not routable, not fatal.
    }
  }
  members.sort((a, b) => a.name.localeCompare(b.name));
  const leaderRevision = modRevisions[keys.leader];
  return { revision, leader: kvs[keys.leader] ?? null, ...(leaderRevision ? { leaderRevision } : {}), members, initialized: keys.initialize in kvs };
}

export interface DcsEvents {
  /** A key of the scope changed; `leaderChanged` when it was the leader key. */
  onChange(leaderChanged: boolean): void;
  onInterrupted(reason: string): void;
  onConnected(): void;
}

export class PatroniDcs {
  readonly prefix: string;
  private readonly etcd: EtcdClient;
  private watch: EtcdWatch | undefined;

  constructor(etcd: EtcdClient, namespace: string, scope: string) {
    this.etcd = etcd;
    this.prefix = patroniKeys(namespace, scope).prefix;
  }

  async read(): Promise<DcsSnapshot> {
    try {
      const { revision, kvs, modRevisions } = await this.etcd.readPrefix(this.prefix);
      return parseSnapshot(this.prefix, revision, kvs, modRevisions);
    } catch (e) {
      throw new DcsUnavailable(`cannot read ${this.prefix} from etcd: ${describe(e)}`, e);
    }
  }

  /** Starts (or restarts) the watch just after `fromRevision`, so no change between a read and the watch is lost. */
  async startWatch(fromRevision: string, events: DcsEvents): Promise<void> {
    await this.stopWatch();
    this.watch = await this.etcd.watchPrefix(this.prefix, String(BigInt(fromRevision) + 1n), {
      onChange: (key) => events.onChange(key === keysUnder(this.prefix).leader),
      onInterrupted: (reason) => events.onInterrupted(reason),
      onConnected: () => events.onConnected(),
    });
  }

  /**
   * Ends a dead leader's lock early: deletes the leader key only if it still names `leader` at the
   * revision the caller judged (one etcd transaction), so a lock renewed since is never touched.
   */
  async releaseLeader(leader: string, revision: string): Promise<boolean> {
    try {
      return await this.etcd.deleteIfUnchanged(keysUnder(this.prefix).leader, leader, revision);
    } catch (e) {
      throw new DcsUnavailable(`cannot release ${leader}'s leader key: ${describe(e)}`, e);
    }
  }

  async stopWatch(): Promise<void> {
    const w = this.watch;
    this.watch = undefined;
    await w?.close().catch(() => undefined);
  }
}
