// `gardenos local dcs show|clean|restore`: the cluster's Patroni keys in etcd.
// `clean` is for stale state (the journal's "waiting for leader to bootstrap"):
// it refuses while any member's Patroni answers or a leader key exists, writes
// a backup of every key it will delete first (0600), then deletes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EtcdClient } from '../clients/etcd.ts';
import { PatroniClient } from '../clients/patroni.ts';
import { GardenError } from '../errors.ts';
import { patroniKeys } from '../router/dcs.ts';
import { ensureDir, writeFileAtomic } from '../util/files.ts';
import { etcdEndpoints, patroniUrl, type LocalCluster } from './cluster.ts';

export interface DcsBackup {
  prefix: string;
  takenAt: string;
  keys: Record<string, string>;
}

/** This cluster's Patroni keys (the router's module spells out their layout). */
export const keysOf = (c: LocalCluster) => patroniKeys(c.config.postgres.namespace, c.config.postgres.scope);

export function scopePrefix(c: LocalCluster): string {
  return keysOf(c).prefix;
}

async function withEtcd<T>(c: LocalCluster, fn: (etcd: EtcdClient) => Promise<T>): Promise<T> {
  const etcd = new EtcdClient(etcdEndpoints(c), c.layout.client, { timeoutMs: 3000 });
  try {
    return await fn(etcd);
  } finally {
    etcd.close();
  }
}

export async function dcsShow(c: LocalCluster): Promise<Record<string, string>> {
  return withEtcd(c, async (etcd) => (await etcd.readPrefix(scopePrefix(c))).kvs);
}

/** What would stop a clean: a member whose Patroni answers, or a leader key (held by a live lease). */
export async function cleanBlockers(c: LocalCluster, keys: Record<string, string>): Promise<string[]> {
  const blockers: string[] = [];
  const leader = keys[keysOf(c).leader];
  if (leader !== undefined) blockers.push(`the leader key is held by ${leader} (its lease is alive)`);
  const answers = await Promise.all(
    c.topology.postgres.map((m) =>
      new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs: 1500 }).call('GET', '/liveness').then(
        () => true,
        () => false,
      ),
    ),
  );
  c.topology.postgres.forEach((m, i) => {
    if (answers[i]) blockers.push(`Patroni on ${m.name} answers on its REST API`);
  });
  return blockers;
}

export async function dcsClean(c: LocalCluster): Promise<{ backup: string; deleted: string[] }> {
  return withEtcd(c, async (etcd) => {
    const { kvs } = await etcd.readPrefix(scopePrefix(c));
    const deleted = Object.keys(kvs).sort();
    if (deleted.length === 0) throw new GardenError('NOT_RUNNING', `no keys under ${scopePrefix(c)}: nothing to clean`);
    const blockers = await cleanBlockers(c, kvs);
    if (blockers.length) {
      throw new GardenError('STATE_CONFLICT', `refusing to clean ${scopePrefix(c)}: the cluster is alive`, {
        details: blockers,
        hint: 'this is for state left by a cluster that is gone; stop the members first (`gardenos local down`), or fix the live cluster instead',
      });
    }
    const dir = join(c.layout.root, 'dcs-backups');
    await ensureDir(dir, 0o700);
    const backup = join(dir, `${c.config.postgres.scope}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFileAtomic(
      backup,
      `${JSON.stringify({ prefix: scopePrefix(c), takenAt: new Date().toISOString(), keys: kvs } satisfies DcsBackup, null, 2)}\n`,
      0o600,
    );
    for (const key of deleted) await etcd.delete(key);
    return { backup, deleted };
  });
}

export async function dcsRestore(c: LocalCluster, file: string): Promise<{ restored: string[]; kept: string[] }> {
  const backup = JSON.parse(await readFile(file, 'utf8')) as DcsBackup;
  if (backup.prefix !== scopePrefix(c)) {
    throw new GardenError('STATE_CONFLICT', `${file} holds keys of ${backup.prefix}, not of this cluster's ${scopePrefix(c)}`);
  }
  return withEtcd(c, async (etcd) => {
    const { kvs } = await etcd.readPrefix(scopePrefix(c));
    const restored: string[] = [];
    const kept: string[] = [];
    for (const [key, value] of Object.entries(backup.keys).sort()) {
      // A key that exists now belongs to whatever runs now; a leader key is never restored (it needs a live lease).
      if (key in kvs || key === keysOf(c).leader) kept.push(key);
      else {
        await etcd.put(key, value);
        restored.push(key);
      }
    }
    return { restored, kept };
  });
}
