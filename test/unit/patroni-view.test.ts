import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readyLeader, type PatroniClusterView } from '../../src/clients/patroni.ts';

const view = (...members: [string, string, string][]): PatroniClusterView => ({ members: members.map(([name, role, state]) => ({ name, role, state })) });
const expected = { members: 3, synchronous: true };

describe('readyLeader', () => {
  it('names the leader of a cluster with every member running and a synchronous standby', () => {
    assert.equal(readyLeader(view(['a', 'leader', 'running'], ['b', 'sync_standby', 'streaming'], ['c', 'replica', 'running']), expected), 'a');
  });

  it('is undefined while a member is missing, not running, or there is no synchronous standby', () => {
    assert.equal(readyLeader(view(['a', 'leader', 'running'], ['b', 'sync_standby', 'running']), expected), undefined);
    assert.equal(readyLeader(view(['a', 'leader', 'running'], ['b', 'sync_standby', 'running'], ['c', 'replica', 'creating replica']), expected), undefined);
    assert.equal(readyLeader(view(['a', 'leader', 'running'], ['b', 'replica', 'running'], ['c', 'replica', 'running']), expected), undefined);
    assert.equal(
      readyLeader(view(['a', 'leader', 'running'], ['b', 'replica', 'running'], ['c', 'replica', 'running']), { members: 3, synchronous: false }),
      'a',
    );
  });

  it('is undefined with no running leader, or two', () => {
    assert.equal(readyLeader(view(['a', 'leader', 'stopped'], ['b', 'sync_standby', 'running'], ['c', 'replica', 'running']), expected), undefined);
    assert.equal(readyLeader(view(['a', 'leader', 'running'], ['b', 'leader', 'running'], ['c', 'sync_standby', 'running']), expected), undefined);
  });
});
