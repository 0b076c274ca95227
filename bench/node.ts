// Node benchmark: the platform on three real kubelets (test/helpers/platform-nodes.ts, isolated
// 10.251.229.0/24). Measures the image builds (cached; cold with BENCH_NODE_COLD=1, into a scratch
// cache: minutes), the time from the rendered platform applied to an empty cluster to the first
// write committed through postgres-primary's Service address, and the write outage a client of that
// address in the cluster sees (a writer pod) — the longest gap between two committed INSERTs, one
// connection each — over planned switchovers (`gardenos db switchover`) and deleted leader pods,
// with every acknowledged write checked afterwards, and the longest wait of a second writer through the
// pooler (postgres-pooler, paused by the switchover) — which should see no failure. Other operators publish
// ~8 s (switchover) and ~13 s (pod deletion). With backups (pgBackRest's repository pod): the stanza and `pgbackrest
// check` right after the rollout (as `up` does, so the failovers are measured with archiving working), then full
// backups as `db backup` runs them (each Job ending with its restore test) and a differential; last, a point-in-time
// recovery beside the cluster and one of the whole cluster (`db restore --to latest`).
//   npm run bench:node        (BENCH_NODE_SWITCHOVERS=3 BENCH_NODE_DELETES=3 BENCH_NODE_BACKUPS=3)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyObjects, awaitRollouts } from '../src/clients/apply.ts';
import { table } from '../src/cli/output.ts';
import { silent } from '../src/log/events.ts';
import { waitFor } from '../src/util/wait.ts';
import { buildImage } from '../test/helpers/containerfile.ts';
import { platformBackup, platformBackupCheck, platformBackupList } from '../src/platform/backups.ts';
import { platformPointInTimeRestore, platformRestoreBeside, platformStopBeside } from '../src/platform/restore.ts';
import { readPlatformSecrets } from '../src/platform/secrets.ts';
import { RECIPES, startPlatformNodes } from '../test/helpers/platform-nodes.ts';
import { formatMs, percentile } from './stats.ts';

if (process.getuid?.() !== 0) {
  console.error('bench:node needs root (network namespaces, bridges, containers)');
  process.exit(1);
}
const SWITCHOVERS = Number(process.env.BENCH_NODE_SWITCHOVERS ?? 3);
const DELETES = Number(process.env.BENCH_NODE_DELETES ?? 3);
const BACKUPS = Number(process.env.BENCH_NODE_BACKUPS ?? 3);
const rows: string[][] = [];
const stat = (label: string, xs: number[], note = '') => rows.push([label, String(xs.length), formatMs(percentile(xs, 50)), formatMs(Math.max(...xs)), note]);

if (process.env.BENCH_NODE_COLD === '1') {
  const scratch = await mkdtemp(join(tmpdir(), 'gardenos-images-cold-'));
  for (const [name, dir] of Object.entries(RECIPES)) {
    const t = performance.now();
    await buildImage(dir, name, { cache: scratch });
    stat(`image ${name}, cold (mmdebstrap + umoci)`, [performance.now() - t]);
  }
  await rm(scratch, { recursive: true, force: true });
}

const progress = (what: string) => process.stderr.write(`bench:node ${new Date().toISOString().slice(11, 19)} ${what}\n`);
progress('starting a local etcd, a control plane and three nodes; building the images');
const t0 = performance.now();
// Traefik from its Go module (no registry is reachable), on ports of its own: the nodes share this machine
// with the node test's (20080/20443).
const p = await startPlatformNodes({
  name: 'bench-node',
  octet: 229,
  extraYaml: [
    'ingress: { image: "gardenos.local/traefik:1", httpPort: 21080, httpsPort: 21443 }',
    'pooler: { enabled: true }',
    // Backups: the repository pod and a pgBackRest server beside each member; schedules out of the run's way
    // (BENCH_NODE_BACKUPS=0: off, to compare the outages without archiving).
    ...(BACKUPS > 0 ? ['backups: { enabled: true, schedule: { full: "0 0 1 1 *", diff: "0 0 2 1 *" } }'] : []),
  ],
});
// Interrupted (Ctrl-C, a CI timeout): still remove every process, link and directory it made.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: cleaning up`);
    void p.stop().finally(() => process.exit(130));
  });
}
try {
  stat('local etcd + control plane + 3 nodes Ready + images imported', [performance.now() - t0]);
  for (const [name, ms] of Object.entries(p.imageMs)) stat(`image ${name}, cached`, [ms]);
  const { core, config } = p;

  // Empty cluster → the rendered platform applied → the first write committed through postgres-primary, by a
  // writer pod started with it: one INSERT per connection, each outcome logged with its time.
  progress('applying the rendered platform');
  const applied = Date.now();
  await applyObjects(p.cp.admin(), p.objects, { report: silent });
  await waitFor("postgres-primary's Service", () => core.readNamespacedService({ name: 'postgres-primary', namespace: config.namespaces.database }), {
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  const writer = await p.startWriter();
  await writer.more(1, 'the first write', 600_000);
  stat('platform applied → first write through postgres-primary', [(await writer.read()).acked[0]!.at - applied]);
  await awaitRollouts(p.cp.admin(), p.objects, { report: silent, waitMs: 300_000 });
  stat('platform applied → every rollout done', [Date.now() - applied]);
  // `gardenos up`'s backups phase comes right after the rollout: the stanza made and archiving proven. Before it every
  // archive_command fails, and a stopping primary's archiver retries its failed segments — measured, that would be
  // a slower failover that is not archiving's cost (the runs before 2026-12-01's second had it so).
  if (BACKUPS > 0) {
    const checkStart = performance.now();
    await platformBackupCheck(p.cp.admin(), config, silent);
    stat('backups: stanza + pgbackrest check (WAL switch → repository)', [performance.now() - checkStart]);
  }
  // A second writer through the pooler's Service (postgres-pooler): it should wait through a switchover, never fail.
  const pooled = await p.startWriter({ pooled: true });
  await pooled.more(5, 'the first pooled writes', 120_000);

  // The outage of an event: the longest gap between two acknowledged writes from just before it until writes resume.
  const outage = async (event: () => Promise<unknown>, previous: string) => {
    await writer.more(5, 'before the event');
    const from = (await writer.read()).acked.length - 1;
    await event();
    await p.settled('after the event', previous, 180_000);
    await writer.more(10, 'after the event');
    const { acked } = await writer.read();
    let gap = 0;
    for (let i = from + 1; i < acked.length; i++) gap = Math.max(gap, acked[i]!.at - acked[i - 1]!.at);
    return gap;
  };
  const switchovers: number[] = [];
  const pooledWaits: number[] = [];
  const pooledFailedBefore = (await pooled.read()).failed;
  for (let i = 0; i < SWITCHOVERS; i++) {
    const { leader } = await p.settled('before a switchover');
    progress(`switchover ${i + 1}/${SWITCHOVERS} from ${leader.name}`);
    const pooledFrom = (await pooled.read()).acked.length - 1;
    switchovers.push(
      await outage(async () => {
        const r = await p.c.cli([
          'db',
          'switchover',
          '--config',
          p.configFile,
          '--secrets-dir',
          p.secretsDir,
          '--kubeconfig',
          p.cp.adminKubeconfigFile,
          '--yes',
          '--json',
        ]);
        if (r.code !== 0) throw new Error(r.stderr);
      }, leader.name),
    );
    await pooled.more(5, 'after the switchover');
    const { acked } = await pooled.read();
    let gap = 0;
    for (let j = pooledFrom + 1; j < acked.length; j++) gap = Math.max(gap, acked[j]!.at - acked[j - 1]!.at);
    pooledWaits.push(gap);
  }
  const pooledFailed = (await pooled.read()).failed - pooledFailedBefore;
  stat('write outage, `gardenos db switchover` (direct to postgres-primary)', switchovers, 'others publish ~8 s');
  stat('longest wait through postgres-pooler, same switchovers', pooledWaits, `${pooledFailed} failed statements`);
  if (pooledFailed > 0) process.exitCode = 1;
  const deletes: number[] = [];
  for (let i = 0; i < DELETES; i++) {
    const { leader } = await p.settled('before deleting the leader pod');
    progress(`deleting leader pod ${leader.name} (${i + 1}/${DELETES})`);
    deletes.push(await outage(() => core.deleteNamespacedPod({ name: leader.name, namespace: config.namespaces.database }), leader.name));
    // The pod comes back as a replica before the next round.
    await waitFor(
      'the deleted pod to stream again',
      async () => (await p.status()).members.find((m) => m.name === leader.name)?.state === 'streaming' || undefined,
      { timeoutMs: 180_000, intervalMs: 500 },
    );
  }
  stat('write outage, leader pod deleted', deletes, 'others publish ~13 s');

  // Backups on the platform, as the CronJobs take them: full backups (each Job: backup from a standby, then its
  // restore test) and a differential.
  if (BACKUPS > 0) await benchBackups();
  async function benchBackups() {
    progress('backups: full backups with their restore tests, a differential');
    const fulls: number[] = [];
    const verifies: number[] = [];
    for (let i = 0; i < BACKUPS; i++) {
      const r = await platformBackup(p.cp.admin(), config, 'full', { report: silent, timeoutMs: 600_000 });
      fulls.push(r.durationMs);
      if (r.verify?.seconds !== undefined) verifies.push(r.verify.seconds * 1000);
    }
    stat(
      'backups: `db backup --type full` (Job: backup + restore test)',
      fulls,
      `database ${(await platformBackupList(p.cp.admin(), config)).backups.at(-1)!.sizeBytes >> 20} MiB`,
    );
    stat('backups: the restore test inside it (restore, start, pg_amcheck)', verifies, 'whole seconds, as the Job records them');
    const diff = await platformBackup(p.cp.admin(), config, 'diff', { report: silent, timeoutMs: 600_000 });
    stat('backups: `db backup --type diff` (Job)', [diff.durationMs]);
  }
  const { acked, failed } = await writer.read();
  const { leader } = await p.settled('at the end');
  const check = p.db(leader.host);
  await check.connect();
  const { rows: stored } = await check.query<{ id: number }>('SELECT id FROM writes');
  await check.end();
  const have = new Set(stored.map((r) => r.id));
  const lost = acked.filter((a) => !have.has(a.id)).length;
  rows.push(['acknowledged writes lost', '1', String(lost), String(lost), `of ${acked.length} acknowledged, ${failed} refused`]);

  // Point-in-time recovery on the platform, last (it rebuilds the cluster): beside the cluster, then in place, to the
  // latest archived WAL — each with its safety and new full backups, as `gardenos db restore --to latest` runs.
  if (BACKUPS > 0) {
    progress('point-in-time recovery: beside the cluster, then the whole cluster');
    const kc = p.cp.admin();
    const beside = await platformRestoreBeside(kc, config, { kind: 'latest' }, { report: silent, timeoutMs: 600_000 });
    stat('`db restore --to latest --beside` (check, pod, restore, promote)', [beside.durationMs]);
    await platformStopBeside(kc, config);
    const secrets = await readPlatformSecrets(p.secretsDir);
    const pitr = await platformPointInTimeRestore(
      { kc, config, secretsDir: p.secretsDir, secrets },
      { kind: 'latest' },
      { report: silent, timeoutMs: 900_000 },
    );
    stat('`db restore --to latest` in place (safety backup … new full backup)', [pitr.durationMs]);
  }

  console.log(table(['MEASURE', 'N', 'P50', 'MAX', 'NOTE'], rows));
  if (lost > 0) process.exitCode = 1;
} finally {
  await p.stop();
}
