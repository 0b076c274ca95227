// Failover benchmark: every fault scenario, N times, on a local cluster with the
// local profile's Patroni settings (the partition on a second cluster in its own
// network namespaces: `local up --isolated`, root); a table of the write outage
// (min / p50 / p95 / max), writes lost and verdicts. A scenario that leaves the
// cluster broken is followed by a fresh cluster, so one failure does not spoil
// the rest. Exits 1 when any run failed: every run counts, none is chosen.
// primary-crash runs twice over: with the router's dead-leader watch (the default) and without it.
//   npm run bench:chaos       (BENCH_CHAOS_RUNS=10, BENCH_SCENARIOS=switchover,primary-crash,…)
import { silent } from '../src/log/events.ts';
import { openLocalCluster, type LocalCluster } from '../src/local/cluster.ts';
import { runScenario, type ChaosRun } from '../src/chaos/run.ts';
import { SCENARIOS, scenario, type Scenario } from '../src/chaos/scenarios.ts';
import { table } from '../src/cli/output.ts';
import { DIST_CLI, makeTestCluster, type TestCluster } from '../test/helpers/local.ts';
import { formatMs, percentile } from './stats.ts';

const runs = Number(process.env.BENCH_CHAOS_RUNS ?? 10);
const picked = (process.env.BENCH_SCENARIOS?.split(',') ?? SCENARIOS.map((s) => s.name)).map(scenario);
const asRoot = process.getuid?.() === 0;
const needsNamespaces = (s: Scenario) => s.name === 'primary-partition';
const results = new Map<string, ChaosRun[]>();
const notes: string[] = [];

async function bench(cluster: TestCluster, scenarios: Scenario[], upArgs: string[], label = (s: Scenario) => s.name): Promise<void> {
  if (!scenarios.length) return;
  try {
    const fresh = async (): Promise<LocalCluster> => {
      await cluster.cli(['local', 'destroy', '--yes']);
      const up = await cluster.cli(['local', 'up', ...upArgs]);
      if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
      return openLocalCluster({ configFile: cluster.configFile, stateDir: cluster.stateDir });
    };
    let c = await fresh();
    for (const s of scenarios) {
      for (let i = 0; i < runs; i++) {
        const run = await runScenario(c, s, silent, { timeoutMs: 120_000 });
        results.set(label(s), [...(results.get(label(s)) ?? []), run]);
        const v = run.verdict;
        process.stderr.write(
          `${label(s)} ${i + 1}/${runs}: outage ${v.outageMs === null ? '-' : formatMs(v.outageMs)}, ${v.verified ? `lost ${v.lost.length}` : 'writes unverified'}, two primaries: ${v.overlaps.length ? 'YES' : 'no'}${v.failure ? `, ${v.failure}` : ''}\n`,
        );
        if (!v.ok) c = await fresh();
      }
    }
  } finally {
    await cluster.cleanup();
  }
}

// The pooler is on (pooled-switchover writes through it; every other scenario writes through HAProxy as before).
const plain = picked.filter((s) => !needsNamespaces(s));
if (plain.length) await bench(await makeTestCluster('bench-chaos', 223, 'pooler: { enabled: true }', DIST_CLI), plain, []);
// The same crash with the router's dead-leader watch switched off: what Patroni's ttl alone costs.
const crash = picked.filter((s) => s.name === 'primary-crash');
if (crash.length) {
  const ttlOnly = await makeTestCluster('bench-ttl', 237, 'router: { deadLeader: { enabled: false } }', DIST_CLI);
  await bench(ttlOnly, crash, [], (s) => `${s.name} (router.deadLeader off)`);
}
const partition = picked.filter(needsNamespaces);
if (partition.length && asRoot) await bench(await makeTestCluster('bench-part', 224, '', DIST_CLI), partition, ['--isolated']);
else if (partition.length) notes.push('primary-partition not run: it needs root for network namespaces');

const rows = [...results].map(([name, rs]) => {
  const outages = rs.map((r) => r.verdict.outageMs).filter((x): x is number => x !== null);
  const at = (p: number) => (outages.length ? formatMs(percentile(outages, p)) : '-');
  const unverified = rs.filter((r) => !r.verdict.verified).length;
  return [
    name,
    String(rs.length),
    outages.length ? formatMs(Math.min(...outages)) : '-',
    at(50),
    at(95),
    outages.length ? formatMs(Math.max(...outages)) : '-',
    `${rs.reduce((n, r) => n + r.verdict.lost.length, 0)}${unverified ? ` (+${unverified} runs unverified)` : ''}`,
    String(rs.reduce((n, r) => n + r.writer.errors.length, 0)),
    formatMs(Math.max(...rs.map((r) => r.writer.longestStatementMs))),
    String(rs.filter((r) => r.verdict.overlaps.length).length),
    `${rs.filter((r) => r.verdict.ok).length}/${rs.length}`,
  ];
});
process.stdout.write(
  `\n${table(['SCENARIO', 'RUNS', 'OUTAGE MIN', 'P50', 'P95', 'MAX', 'LOST WRITES', 'FAILED STATEMENTS', 'LONGEST STATEMENT', 'TWO PRIMARIES', 'PASSED'], rows)}\n`,
);
process.stdout.write(
  'goals: primary-crash outage ≤ 5 s with the dead-leader watch (≤ ttl + 1 s = 21 s without); switchover ≤ 2 s; pooled-switchover: 0 failed statements, longest statement ≤ 2 s; zero lost writes and no two primaries everywhere\n',
);
for (const n of notes) process.stdout.write(`${n}\n`);
if ([...results.values()].flat().some((r) => !r.verdict.ok)) process.exitCode = 1;
