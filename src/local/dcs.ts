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
import { cleanPatroniKeys, type DcsBackup } from '../ops/dcs.ts';
import { etcdEndpoints, patroniUrl, type LocalCluster } from './cluster.ts';

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

/** The members whose Patroni answers: a clean is refused while any does. */
async function answering(c: LocalCluster): Promise<string[]> {
  const answers = await Promise.all(
    c.topology.postgres.map((m) =>
      new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs: 1500 }).call('GET', '/liveness').then(
        () => true,
        () => false,
      ),
    ),
  );
  return c.topology.postgres.filter((_, i) => answers[i]).map((m) => `Patroni on ${m.name} answers on its REST API`);
}

export async function dcsClean(c: LocalCluster): Promise<{ backup: string; deleted: string[] }> {
  return withEtcd(c, (etcd) =>
    cleanPatroniKeys({
      etcd,
      keys: keysOf(c),
      scope: c.config.postgres.scope,
      answering: () => answering(c),
      backupDir: join(c.layout.root, 'dcs-backups'),
      aliveHint: 'this is for state left by a cluster that is gone; stop the members first (`gardenos local down`), or fix the live cluster instead',
    }),
  );
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
