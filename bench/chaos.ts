// Failover benchmark: every fault scenario, BENCH_CHAOS_RUNS times, on a local
// cluster with the local profile's Patroni settings; a table of the write
// outage (p50/p95/max), writes lost and verdicts. A scenario that leaves the
// cluster broken is followed by a fresh cluster, so one failure does not spoil the rest.
//   npm run bench:chaos       (BENCH_CHAOS_RUNS=3, BENCH_SCENARIOS=switchover,primary-crash,…)
import { silent } from '../src/log/events.ts';
import { openLocalCluster } from '../src/local/cluster.ts';
import { runScenario, type ChaosRun } from '../src/chaos/run.ts';
import { SCENARIOS, scenario } from '../src/chaos/scenarios.ts';
import { table } from '../src/cli/output.ts';
import { DIST_CLI, makeTestCluster } from '../test/helpers/local.ts';
import { formatMs, percentile } from './stats.ts';

const runs = Number(process.env.BENCH_CHAOS_RUNS ?? 3);
const picked = (process.env.BENCH_SCENARIOS?.split(',') ?? SCENARIOS.map((s) => s.name)).map(scenario);
const cluster = await makeTestCluster('bench-chaos', 223, '', DIST_CLI);
const results = new Map<string, ChaosRun[]>();
try {
  const fresh = async () => {
    await cluster.cli(['local', 'destroy', '--yes']);
    const up = await cluster.cli(['local', 'up']);
    if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
  };
  await fresh();
  const c = await openLocalCluster({ configFile: cluster.configFile, stateDir: cluster.stateDir });
  for (const s of picked) {
    for (let i = 0; i < runs; i++) {
      const run = await runScenario(c, s, silent, { timeoutMs: 90_000 });
      results.set(s.name, [...(results.get(s.name) ?? []), run]);
      const v = run.verdict;
      process.stderr.write(`${s.name} ${i + 1}/${runs}: outage ${v.outageMs === null ? '-' : formatMs(v.outageMs)}, lost ${v.lost.length}, two primaries: ${v.overlaps.length ? 'YES' : 'no'}${v.failure ? `, ${v.failure}` : ''}\n`);
      if (!v.ok) await fresh();
    }
  }
} finally {
  await cluster.cleanup();
}

const rows = [...results].map(([name, rs]) => {
  const outages = rs.map((r) => r.verdict.outageMs).filter((x): x is number => x !== null);
  return [
    name,
    String(rs.length),
    outages.length ? formatMs(percentile(outages, 50)) : '-',
    outages.length ? formatMs(percentile(outages, 95)) : '-',
    outages.length ? formatMs(Math.max(...outages)) : '-',
    String(rs.reduce((n, r) => n + r.verdict.lost.length, 0)),
    String(rs.filter((r) => r.verdict.overlaps.length).length),
    `${rs.filter((r) => r.verdict.ok).length}/${rs.length}`,
  ];
});
process.stdout.write(`\n${table(['SCENARIO', 'RUNS', 'OUTAGE P50', 'P95', 'MAX', 'LOST WRITES', 'TWO PRIMARIES', 'PASSED'], rows)}\n`);
process.stdout.write('goals: primary-crash outage ≤ ttl + 1 s (local profile: 11 s); switchover ≤ 2 s; zero lost writes and no two primaries everywhere\n');
