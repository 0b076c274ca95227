// `gardenos local chaos [scenario …]`: break the local cluster on purpose,
// under write load, and report the outage and whether anything was lost.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runScenario, type ChaosRun } from '../chaos/run.ts';
import { markdown, svg } from '../chaos/report.ts';
import { scenario, SCENARIOS } from '../chaos/scenarios.ts';
import { streamReporter } from '../log/events.ts';
import { openLocalCluster } from '../local/cluster.ts';
import type { GlobalOptions } from './local.ts';

export async function chaosCommand(g: GlobalOptions, names: string[], opts: { runs: string; out?: string; list?: boolean }): Promise<number> {
  if (opts.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(18)} ${s.description}\n`);
    return 0;
  }
  const picked = (names.length ? names : SCENARIOS.map((s) => s.name)).map(scenario);
  const c = await openLocalCluster(g);
  const report = streamReporter(process.stderr, Boolean(g.json));
  const out = opts.out ?? join(c.layout.root, 'chaos', new Date().toISOString().replace(/[:.]/g, '-'));
  await mkdir(out, { recursive: true });
  const runs: ChaosRun[] = [];
  let stopped: string | undefined;
  for (const s of picked) {
    for (let i = 1; i <= Number(opts.runs) && !stopped; i++) {
      let run: ChaosRun;
      try {
        run = await runScenario(c, s, report);
      } catch (e) {
        // Most often: an earlier fault left the cluster unhealthy. Later runs would measure nothing.
        stopped = `${s.name} run ${i} could not run: ${e instanceof Error ? e.message : String(e)}`;
        report({ kind: 'warn', message: stopped });
        break;
      }
      runs.push(run);
      const base = join(out, `${s.name}-${i}`);
      await writeFile(`${base}.json`, `${JSON.stringify(run, null, 2)}\n`);
      await writeFile(`${base}.svg`, svg(run));
    }
  }
  const table = markdown(runs) + (stopped ? `\nStopped early: ${stopped}\n` : '');
  await writeFile(
    join(out, 'report.md'),
    `# GardenOS fault report\n\ncluster ${c.config.cluster.name}, ttl ${c.config.postgres.ttl}s, loop_wait ${c.config.postgres.loopWait}s\n\n${table}`,
  );
  if (g.json)
    process.stdout.write(
      `${JSON.stringify(
        {
          out,
          ...(stopped ? { stopped } : {}),
          runs: runs.map((r) => ({
            scenario: r.scenario,
            fault: r.fault,
            startedAt: r.startedAt,
            injectAt: r.injectAt,
            recoverAt: r.recoverAt,
            healthyAt: r.healthyAt,
            endAt: r.endAt,
            verdict: r.verdict,
          })),
        },
        null,
        2,
      )}\n`,
    );
  else process.stdout.write(`${table}\nreport, data and charts: ${out}\n`);
  return !stopped && runs.every((r) => r.verdict.ok) ? 0 : 2;
}
