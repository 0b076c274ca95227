// The one judgement every status shares (health/judge.ts): etcd, leadership, and the Kubernetes side.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etcdProblems, kubernetesProblems, leaderProblems } from '../../src/health/judge.ts';

const etcd = (name: string, healthy: boolean, leader = false) => ({
  name,
  endpoint: `https://${name}:2379`,
  healthy,
  leader,
  ...(healthy ? {} : { error: 'connect ECONNREFUSED' }),
});

describe('health: the shared judgement', () => {
  it('etcd: each unhealthy member by name, and no leader at all', () => {
    assert.deepEqual(etcdProblems([etcd('a', true, true), etcd('b', true), etcd('c', true)]), []);
    assert.deepEqual(etcdProblems([etcd('a', true, true), etcd('b', false), etcd('c', true)]), ['etcd b is not healthy: connect ECONNREFUSED']);
    assert.deepEqual(etcdProblems([etcd('a', true), etcd('b', true)]), ['etcd has no leader']);
  });

  it('leadership: exactly one leader, and a synchronous standby in synchronous mode', () => {
    const roles = (...r: string[]) => r.map((role) => ({ role }));
    assert.deepEqual(leaderProblems(roles('leader', 'sync_standby', 'replica'), { synchronous: true }), []);
    assert.deepEqual(leaderProblems(roles('replica', 'replica'), { synchronous: true }), ['PostgreSQL has no leader']);
    assert.deepEqual(leaderProblems(roles('leader', 'leader'), { synchronous: false }), ['PostgreSQL has 2 leaders']);
    assert.deepEqual(leaderProblems(roles('leader', 'replica'), { synchronous: true }), ['synchronous mode is on but there is no synchronous standby']);
    assert.deepEqual(leaderProblems(roles('leader', 'replica'), { synchronous: false }), []);
  });

  it('Kubernetes: the API silent, a node not Ready, a workload short of replicas', () => {
    assert.deepEqual(kubernetesProblems({ reachable: false, nodes: [], workloads: [], error: 'timeout' }), ['the Kubernetes API does not answer: timeout']);
    const node = { name: 'n1', ready: false } as Parameters<typeof kubernetesProblems>[0]['nodes'][number];
    const workload = { kind: 'Deployment', namespace: 'apps', name: 'api', ready: 1, desired: 2 } as Parameters<
      typeof kubernetesProblems
    >[0]['workloads'][number];
    assert.deepEqual(kubernetesProblems({ reachable: true, nodes: [node], workloads: [workload] }), ['node n1 is not Ready', 'Deployment apps/api: 1/2 ready']);
  });
});
