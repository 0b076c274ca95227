import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { markdown, svg } from '../../src/chaos/report.ts';
import type { ChaosRun } from '../../src/chaos/run.ts';
import { judge, unverified, type StoredRow } from '../../src/chaos/verdict.ts';

const acks = [
  { seq: 1, at: 100 },
  { seq: 2, at: 200 },
  { seq: 3, at: 300 }, // fault injected at 350
  { seq: 5, at: 2300 },
  { seq: 6, at: 2400 },
];
const row = (seq: number, node: string, ts: number): StoredRow => ({ seq, node, ts });

describe('chaos verdict', () => {
  it('passes when every acknowledged row is there and the nodes took writes one after the other', () => {
    const rows = [row(1, 'a', 1000), row(2, 'a', 1100), row(3, 'a', 1200), row(4, 'a', 1250), row(5, 'b', 3200), row(6, 'b', 3300)];
    const v = judge(acks, rows, 350);
    assert.equal(v.ok, true);
    assert.deepEqual(v.lost, []);
    assert.equal(v.outageMs, 2000, 'from the last write before the silence to the first after it');
    assert.deepEqual(
      v.intervals.map((i) => [i.node, i.rows]),
      [
        ['a', 3],
        ['b', 2],
      ],
    );
  });

  it('calls the writes of a cluster that did not recover unverified, never lost', () => {
    const v = unverified(acks, 350, 'did not recover: timed out');
    assert.deepEqual([v.ok, v.verified, v.acknowledged, v.lost], [false, false, 5, []]);
    assert.equal(v.failure, 'did not recover: timed out');
    assert.equal(judge(acks, [], 350).verified, true);
  });

  it('names every acknowledged row that is missing', () => {
    const v = judge(acks, [row(1, 'a', 1), row(2, 'a', 2), row(5, 'b', 5), row(6, 'b', 6)], 350);
    assert.deepEqual(v.lost, [3]);
    assert.equal(v.ok, false);
  });

  it('finds two primaries: nodes whose acknowledged writes interleave in time', () => {
    const v = judge(acks, [row(1, 'a', 1), row(2, 'b', 2), row(3, 'a', 3), row(5, 'b', 5), row(6, 'b', 6)], 350);
    assert.deepEqual(v.overlaps, [['a', 'b']]);
    assert.equal(v.ok, false);
  });

  it('says when writes never resumed', () => {
    const v = judge(acks.slice(0, 3), [row(1, 'a', 1), row(2, 'a', 2), row(3, 'a', 3)], 350);
    assert.equal(v.outageMs, null);
    assert.equal(v.ok, false);
  });

  it('reports as a Markdown row and an SVG chart with the fault marked', () => {
    const v = judge(acks, [row(1, 'a', 1), row(2, 'a', 2), row(3, 'a', 3), row(5, 'b', 5), row(6, 'b', 6)], 350);
    const run: ChaosRun = {
      scenario: 'primary-crash',
      fault: 'SIGKILL to a',
      startedAt: 1_700_000_000_000,
      injectAt: 350,
      recoverAt: 400,
      healthyAt: 2000,
      endAt: 2500,
      writer: { acks, errors: [], attempts: 6, longestStatementMs: 120 },
      verdict: v,
      timelines: { before: 1, after: 2 },
    };
    assert.match(markdown([run]), /\| primary-crash \| SIGKILL to a \| 2\.00 s \| 5 \| 0 \| 0 \| 0\.12 s \| none \| a \(3\) → b \(2\) \| pass \|/);
    const chart = svg(run);
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(chart, />fault</);
    assert.match(chart, /outage 2\.00 s, lost 0/);
  });
});
