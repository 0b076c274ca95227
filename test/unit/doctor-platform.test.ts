// The production doctor's checks as functions of their facts: each turns a journal failure into a
// finding with its evidence and fix, and says "skip" with the reason when its facts are missing.
// (test/integration/kube-node.test.ts causes each fault on a real cluster.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { runChecks } from '../../src/doctor/checks.ts';
import type { DoctorFacts, PlatformFacts } from '../../src/doctor/facts.ts';
import { PLATFORM_CHECKS } from '../../src/doctor/platform.ts';
import type { PlatformStatus } from '../../src/platform/status.ts';
import { productionTopology } from '../../src/render/topology.ts';

const config = parseConfig(
  ['cluster: { name: t }', 'nodes:', ...[1, 2, 3].map((i) => `  - { name: n${i}, address: { public: 192.0.2.${i}, private: 10.0.0.${i} } }`)].join('\n'),
);
const member = (i: number, role: string, state: string) => ({
  name: `gardenos-${i}`,
  host: `10.0.0.${i + 1}`,
  role,
  state,
  timeline: 1,
  lagBytes: 0,
  apiReachable: true,
});
const healthyStatus: PlatformStatus = {
  cluster: 't',
  healthy: true,
  problems: [],
  etcd: [1, 2, 3].map((i) => ({ name: `n${i}`, endpoint: `https://10.0.0.${i}:2379`, healthy: true, leader: i === 1 })),
  members: [member(0, 'leader', 'running'), member(1, 'sync_standby', 'streaming'), member(2, 'replica', 'streaming')],
  haproxy: [],
};
const rule = (line: number, address: string, netmask: string) => ({
  line,
  type: 'hostssl',
  databases: ['all'],
  users: ['all'],
  address,
  netmask,
  method: 'scram-sha-256',
});
const facts = (p: Partial<PlatformFacts>): DoctorFacts => ({
  platform: {
    config,
    topology: productionTopology(config),
    status: healthyStatus,
    hba: [rule(1, '10.0.0.0', '255.255.255.0'), rule(2, '10.42.0.0', '255.255.0.0')],
    pods: [0, 1, 2].map((i) => ({ name: `gardenos-${i}`, node: `n${i + 1}`, permissionsStep: { exitCode: 0 }, log: [] })),
    ...p,
  },
});
const find = (f: DoctorFacts, id: string) => runChecks(f, PLATFORM_CHECKS).find((x) => x.id === id)!;

describe('gardenos doctor (production checks)', () => {
  it('passes a healthy platform and skips the Kubernetes checks without a kubeconfig, saying so', () => {
    const findings = runChecks(facts({}), PLATFORM_CHECKS);
    for (const id of ['etcd-health', 'patroni-members', 'replication', 'pgdata-permissions', 'pg-hba'])
      assert.equal(findings.find((x) => x.id === id)!.status, 'ok', id);
    assert.match(findings.find((x) => x.id === 'k8s-default-storage-class')!.summary, /no kubeconfig/);
  });

  it('fails pg-hba when the pod network meets no rule, naming it', () => {
    const f = find(facts({ hba: [rule(1, '10.0.0.0', '255.255.255.0')] }), 'pg-hba');
    assert.equal(f.status, 'fail');
    assert.match(f.summary, /10\.42\.0\.0\/16 \(the pod network/);
  });

  it('fails replication without a synchronous standby, and permissions on a failed step or a refusal in the log', () => {
    const noSync = { ...healthyStatus, members: [member(0, 'leader', 'running'), member(1, 'replica', 'streaming'), member(2, 'replica', 'streaming')] };
    assert.match(find(facts({ status: noSync }), 'replication').summary, /no synchronous standby/);
    const pods = [
      {
        name: 'gardenos-1',
        node: 'n2',
        permissionsStep: { exitCode: 0 },
        log: ['FATAL:  data directory "/home/postgres/pgdata/pgroot/data" has invalid permissions'],
      },
    ];
    const f = find(facts({ pods }), 'pgdata-permissions');
    assert.equal(f.status, 'fail');
    assert.match(f.fix ?? '', /chown -R 999:999/);
    assert.equal(find(facts({ pods: undefined, podsError: 'forbidden' }), 'pgdata-permissions').status, 'skip');
  });

  it('fails etcd-health when quorum is lost', () => {
    const etcd = healthyStatus.etcd.map((e, i) => ({ ...e, healthy: i === 0 }));
    assert.match(find(facts({ status: { ...healthyStatus, etcd } }), 'etcd-health').summary, /quorum is lost/);
  });
});
