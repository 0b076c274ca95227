import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GardenEvent } from '../../src/log/events.ts';
import { type Phase, runPhases } from '../../src/log/phases.ts';
import { PHASES, SKIPPABLE, UP_PHASES } from '../../src/remote/up.ts';

describe('phases: one runner', () => {
  const recorder = () => {
    const events: GardenEvent[] = [];
    return { events, report: (e: GardenEvent) => events.push(e) };
  };
  const steps = (events: GardenEvent[]) => events.map((e) => (e.kind === 'step' ? `${e.step} ${e.status}${e.detail ? `: ${e.detail}` : ''}` : e.kind));

  it('runs in order, skips what --skip names and what says why not, and stops at the first failure', async () => {
    const ran: string[] = [];
    const phase = (name: string, extra: Partial<Phase<{ dry: boolean }>> = {}): Phase<{ dry: boolean }> => ({
      name,
      run: async () => {
        ran.push(name);
        return `${name} did it`;
      },
      ...extra,
    });
    const { events, report } = recorder();
    const failing = phase('d', {
      run: async () => {
        throw new Error('the host refused');
      },
    });
    await assert.rejects(
      runPhases([phase('a'), phase('b', { skipReason: (c) => (c.dry ? 'a dry run' : undefined) }), phase('c'), failing, phase('e')], { dry: true }, report, {
        skip: new Set(['c']),
      }),
      /the host refused/,
    );
    assert.deepEqual(ran, ['a']);
    assert.deepEqual(steps(events), ['a start', 'a done: a did it', 'b skip: a dry run', 'c skip: skipped (--skip)', 'd start', 'd fail: the host refused']);
  });

  it('leaves the failure out of the fail event when asked (the caller prints it once)', async () => {
    const { events, report } = recorder();
    await assert.rejects(runPhases([{ name: 'x', run: () => Promise.reject(new Error('boom')) }], {}, report, { failDetail: false }), /boom/);
    assert.deepEqual(steps(events), ['x start', 'x fail']);
  });

  it("gardenos up's phases are the names --skip accepts, in order", () => {
    assert.deepEqual(
      UP_PHASES.map((p) => p.name),
      [...PHASES],
    );
    for (const s of SKIPPABLE) assert.ok(PHASES.includes(s));
  });
});
