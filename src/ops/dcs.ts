// Cleaning a Patroni cluster's keys in etcd, local and platform alike: refused while a member's Patroni
// answers or a leader key exists (a live cluster is fixed, not wiped), every key written to a 0600 backup
// first (`dcs restore` puts them back), then deleted.
import { join } from 'node:path';
import type { EtcdClient } from '../clients/etcd.ts';
import { GardenError } from '../errors.ts';
import type { PatroniKeys } from '../router/dcs.ts';
import { ensureDir, writeFileAtomic } from '../util/files.ts';

export interface DcsBackup {
  prefix: string;
  takenAt: string;
  keys: Record<string, string>;
}

export interface CleanInput {
  etcd: EtcdClient;
  keys: PatroniKeys;
  scope: string;
  /** The members whose Patroni answers now, each said as a blocker ("Patroni on node1 answers on its REST API"). */
  answering: () => Promise<string[]>;
  /** Where the backup file goes (made 0700). */
  backupDir: string;
  /** What to do instead, when the cluster is alive. */
  aliveHint: string;
}

/** Deletes every key under the scope's prefix after backing them up; refuses a live cluster, naming what is alive. */
export async function cleanPatroniKeys(o: CleanInput): Promise<{ backup: string; deleted: string[] }> {
  const { kvs } = await o.etcd.readPrefix(o.keys.prefix);
  const deleted = Object.keys(kvs).sort();
  if (deleted.length === 0) throw new GardenError('NOT_RUNNING', `no keys under ${o.keys.prefix}: nothing to clean`);
  const leader = kvs[o.keys.leader];
  const blockers = [...(leader !== undefined ? [`the leader key is held by ${leader} (its lease is alive)`] : []), ...(await o.answering())];
  if (blockers.length) {
    throw new GardenError('STATE_CONFLICT', `refusing to clean ${o.keys.prefix}: the cluster is alive`, { details: blockers, hint: o.aliveHint });
  }
  await ensureDir(o.backupDir, 0o700);
  const takenAt = new Date().toISOString();
  const backup = join(o.backupDir, `${o.scope}-${takenAt.replace(/[:.]/g, '-')}.json`);
  await writeFileAtomic(backup, `${JSON.stringify({ prefix: o.keys.prefix, takenAt, keys: kvs } satisfies DcsBackup, null, 2)}\n`, 0o600);
  for (const key of deleted) await o.etcd.delete(key);
  return { backup, deleted };
}
