// The verdict of a fault run, as pure functions of what was recorded: every
// acknowledged row must be there, no two nodes may have accepted writes during
// the same interval, and the write outage is measured from the last
// acknowledged write before the fault to the first after it.
import type { Ack } from './writer.ts';

export interface StoredRow {
  seq: number;
  node: string;
  /** Server clock, milliseconds since the epoch. */
  ts: number;
}

export interface NodeInterval {
  node: string;
  first: number;
  last: number;
  rows: number;
}

export interface Verdict {
  acknowledged: number;
  lost: number[];
  /** Which node accepted acknowledged writes, and from when to when (server clock). */
  intervals: NodeInterval[];
  /** Pairs of nodes whose write intervals overlap: two primaries at once. */
  overlaps: [string, string][];
  /** The longest time without an acknowledged write once the fault began; null if writes never resumed. */
  outageMs: number | null;
  ok: boolean;
  /** Set when the cluster did not heal after the fault; the rows could then not be checked. */
  failure?: string;
  /** False when the stored rows could not be read (the cluster did not heal): `lost` is then unknown, not empty. */
  verified: boolean;
}

/** The verdict of a run whose cluster did not heal: its writes are unverified, never counted as lost. */
export function unverified(acks: readonly Ack[], injectAt: number, failure: string): Verdict {
  const { acknowledged, outageMs } = judge(acks, [], injectAt);
  return { acknowledged, lost: [], intervals: [], overlaps: [], outageMs, ok: false, failure, verified: false };
}

export function judge(acks: readonly Ack[], rows: readonly StoredRow[], injectAt: number): Verdict {
  const stored = new Map(rows.map((r) => [r.seq, r]));
  const lost = acks.filter((a) => !stored.has(a.seq)).map((a) => a.seq);

  const byNode = new Map<string, NodeInterval>();
  for (const a of acks) {
    const r = stored.get(a.seq);
    if (!r) continue;
    const i = byNode.get(r.node) ?? { node: r.node, first: r.ts, last: r.ts, rows: 0 };
    i.first = Math.min(i.first, r.ts);
    i.last = Math.max(i.last, r.ts);
    i.rows++;
    byNode.set(r.node, i);
  }
  const intervals = [...byNode.values()].sort((a, b) => a.first - b.first);
  const overlaps: [string, string][] = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i]!;
      const b = intervals[j]!;
      if (a.first <= b.last && b.first <= a.last) overlaps.push([a.node, b.node]);
    }
  }

  // From the last acknowledged write before each silence to the first after it; the fault may take
  // effect a moment after it is injected (a switchover is a request), so every silence that ends
  // after the injection counts, and the longest is the outage.
  const sorted = [...acks].sort((a, b) => a.at - b.at);
  let outageMs: number | null = sorted.some((a) => a.at > injectAt) ? 0 : null;
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.at > injectAt) outageMs = Math.max(outageMs ?? 0, sorted[i]!.at - sorted[i - 1]!.at);
  }
  return {
    acknowledged: acks.length,
    lost,
    intervals,
    overlaps,
    outageMs,
    ok: lost.length === 0 && overlaps.length === 0 && outageMs !== null,
    verified: true,
  };
}
