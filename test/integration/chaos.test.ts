// Fault injection under write load on a real local cluster, each scenario once
// (the partition, which needs namespaces, is in isolated.test.ts): every
// acknowledged write must survive, no two nodes may take writes at once, and the
// cluster must recover. Outage goals are benchmarks, not asserted.
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Verdict } from '../../src/chaos/verdict.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';

/** The scenarios after which another node takes the writes. */
const MOVES_PRIMARY = ['switchover', 'primary-crash', 'primary-freeze'];
const SCENARIOS = [...MOVES_PRIMARY, 'primary-crash-restart', 'replica-crash', 'etcd-member-loss', 'etcd-quorum-loss', 'cluster-restart'];

describe('gardenos local chaos: no acknowledged write lost, never two primaries', { timeout: 900_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = await makeTestCluster('it-chaos', 214);
    const up = await c.cli(['local', 'up']);
    assert.equal(up.code, 0, up.stderr);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('every scenario but the partition: zero loss, one primary at a time, recovered, a report with charts', async () => {
    const out = join(c.dir, 'chaos');
    // Nine scenarios, each waiting for a cluster healed for 5 s on end before and after: minutes, not the CLI helper's default 4.
    const r = await c.cli(['local', 'chaos', ...SCENARIOS, '--out', out, '--json'], { timeoutMs: 720_000 });
    const result = JSON.parse(r.stdout) as { runs: { scenario: string; startedAt: number; injectAt: number; endAt: number; verdict: Verdict }[] };
    for (const run of result.runs) {
      assert.equal(run.verdict.verified, true, `${run.scenario}: ${run.verdict.failure}`);
      assert.deepEqual(run.verdict.lost, [], `${run.scenario}: acknowledged writes lost`);
      assert.deepEqual(run.verdict.overlaps, [], `${run.scenario}: two primaries`);
      assert.ok(run.verdict.acknowledged > 100, `${run.scenario}: the writer kept writing`);
      assert.notEqual(run.verdict.outageMs, null, `${run.scenario}: writes resumed`);
      assert.equal(run.verdict.ok, true, `${run.scenario}: verdict`);
      if (MOVES_PRIMARY.includes(run.scenario)) assert.ok(run.verdict.intervals.length >= 2, `${run.scenario}: writes moved to another node`);
    }
    assert.deepEqual(
      result.runs.map((x) => x.scenario),
      SCENARIOS,
    );
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['report.md', 'switchover-1.svg', 'switchover-1.json', 'primary-crash-1.svg']) await access(join(out, f));
    // The crash was ended by the router's dead-leader watch, not by the lock's ttl; the frozen leader was not.
    const decisions = (await readFile(join(c.stateDir, 'logs', 'router.log'), 'utf8'))
      .split('\n')
      .filter((l) => l.includes('ended its leader lock'))
      .map((l) => JSON.parse(l) as { ts: string; decision: string; changes: string[] });
    const at = (scenario: string) => {
      const run = result.runs.find((x) => x.scenario === scenario)!;
      return decisions.filter((d) => Date.parse(d.ts) >= run.startedAt + run.injectAt && Date.parse(d.ts) <= run.startedAt + run.endAt);
    };
    assert.equal(at('primary-crash').length, 1, `one lock ended during the crash: ${JSON.stringify(decisions)}`);
    assert.match(at('primary-crash')[0]!.decision, /refuses connections on both its Patroni and PostgreSQL ports and .* lost replication from it/);
    assert.deepEqual(at('primary-freeze'), [], 'a frozen leader is ambiguous: its lock is left to the ttl');
  });
});
