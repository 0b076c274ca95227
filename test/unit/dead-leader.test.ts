import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { parseSnapshot } from '../../src/router/dcs.ts';
import {
  DeadLeaderWatch,
  failedPortState,
  judgeRound,
  tcpPortState,
  type LeaderObserver,
  type MemberReplication,
  type PortState,
} from '../../src/router/deadleader.ts';

const P = '/service/s/';
const member = (ip: string, role: string) =>
  JSON.stringify({ conn_url: `postgres://${ip}:5432/postgres`, api_url: `https://${ip}:8008/patroni`, state: 'running', role, timeline: 3 });

function snapshot(leaderRevision = '17') {
  return parseSnapshot(
    P,
    '42',
    {
      [`${P}leader`]: 'a',
      [`${P}members/a`]: member('10.0.0.1', 'primary'),
      [`${P}members/b`]: member('10.0.0.2', 'replica'),
      [`${P}members/c`]: member('10.0.0.3', 'replica'),
    },
    { [`${P}leader`]: leaderRevision },
  );
}

const lost: MemberReplication = { role: 'replica', replicationState: null };
const streaming: MemberReplication = { role: 'replica', replicationState: 'streaming' };

describe('dead leader: one round', () => {
  const others = [
    { name: 'b', view: lost },
    { name: 'c', view: lost },
  ];
  it('is dead only when both ports refuse and the members that answer lost replication', () => {
    assert.equal(judgeRound('a', { apiPort: 'refused', postgresPort: 'refused', members: others }).dead, true);
    assert.equal(
      judgeRound('a', {
        apiPort: 'refused',
        postgresPort: 'refused',
        members: [
          { name: 'b', view: lost },
          { name: 'c', view: undefined },
        ],
      }).dead,
      true,
    );
  });
  it('waits when a port answers, times out or is unreachable: a frozen or cut-off leader is ambiguous', () => {
    for (const state of ['open', 'timeout', 'unreachable'] as PortState[]) {
      const api = judgeRound('a', { apiPort: state, postgresPort: 'refused', members: others });
      const pg = judgeRound('a', { apiPort: 'refused', postgresPort: state, members: others });
      assert.equal(api.dead, false);
      assert.equal(pg.dead, false);
      assert.match(api.reason, new RegExp(`Patroni API port: ${state}`));
      assert.match(pg.reason, new RegExp(`PostgreSQL port: ${state}`));
    }
  });
  it('waits while any member still streams, reports itself primary, or none answers', () => {
    const refused = { apiPort: 'refused', postgresPort: 'refused' } as const;
    assert.match(
      judgeRound('a', {
        ...refused,
        members: [
          { name: 'b', view: lost },
          { name: 'c', view: streaming },
        ],
      }).reason,
      /c still streams/,
    );
    assert.match(
      judgeRound('a', { ...refused, members: [{ name: 'b', view: { role: 'primary', replicationState: null } }] }).reason,
      /b reports itself primary/,
    );
    assert.match(judgeRound('a', { ...refused, members: [{ name: 'b', view: undefined }] }).reason, /no other member answers/);
    assert.match(judgeRound('a', { ...refused, members: [] }).reason, /no other member answers/);
  });
});

/** A leader whose ports and members say what the test sets, and a clock the test moves. */
function world() {
  const w = {
    ports: 'refused' as PortState,
    views: { b: lost, c: lost } as Record<string, MemberReplication | undefined>,
    clock: 0,
    releases: [] as string[],
    releaseAnswer: true,
    reports: [] as { released: boolean; leader: string; reason: string }[],
  };
  const observer: LeaderObserver = { api: async () => w.ports, postgres: async () => w.ports, replication: async (m) => w.views[m.name] };
  const watch = new DeadLeaderWatch({
    observer,
    release: async (leader, revision) => {
      w.releases.push(`${leader}@${revision}`);
      return w.releaseAnswer;
    },
    confirmMs: 1000,
    intervalMs: 200,
    report: (e) => w.reports.push(e),
    now: () => w.clock,
  });
  /** One router cycle every `step` ms for `ms`. */
  const run = async (ms: number, snap = snapshot(), step = 50) => {
    for (const end = w.clock + ms; w.clock < end; w.clock += step) {
      watch.consider(snap);
      await watch.settled();
    }
  };
  return { w, watch, run };
}

describe('dead leader: the watch', () => {
  it('ends the lock once, at the observed revision, after every round for confirmMs said dead', async () => {
    const { w, run } = world();
    await run(900);
    assert.deepEqual(w.releases, [], 'not before confirmMs');
    await run(400);
    assert.deepEqual(w.releases, ['a@17']);
    assert.equal(w.reports.length, 1);
    assert.equal(w.reports[0]!.released, true);
    assert.match(w.reports[0]!.reason, /a refuses connections on both .* b, c lost replication .* ended its leader lock \(revision 17\)/);
    await run(3000);
    assert.deepEqual(w.releases, ['a@17'], 'never twice for the same lock');
  });

  it('starts over when one round says otherwise (a Patroni restarting answers on its API)', async () => {
    const { w, run } = world();
    await run(800);
    w.ports = 'open';
    await run(200);
    w.ports = 'refused';
    await run(800);
    assert.deepEqual(w.releases, [], 'the clock restarted at the first dead round after the open one');
    await run(400);
    assert.deepEqual(w.releases, ['a@17']);
  });

  it('starts over when the lock changes (a renewal), and never acts on a frozen leader', async () => {
    const { w, watch, run } = world();
    await run(800);
    await run(400, snapshot('18'));
    assert.deepEqual(w.releases, [], 'a new revision is a new suspicion');
    w.ports = 'timeout';
    await run(5000, snapshot('18'));
    assert.deepEqual(w.releases, []);
    watch.clear();
  });

  it('reports a lock that changed before the delete, and leaves it to Patroni', async () => {
    const { w, run } = world();
    w.releaseAnswer = false;
    await run(1300);
    assert.deepEqual(w.releases, ['a@17']);
    assert.equal(w.reports[0]!.released, false);
    assert.match(w.reports[0]!.reason, /changed since revision 17 .* left to Patroni/);
  });
});

describe('dead leader: a TCP port, for real', () => {
  it('tells an open port from a refused one on loopback', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    assert.equal(await tcpPortState('127.0.0.1', port, 1000), 'open');
    await new Promise((r) => server.close(r));
    assert.equal(await tcpPortState('127.0.0.1', port, 1000), 'refused');
  });

  it('reads refused and out-of-time from an error or its causes', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:8008'), { code: 'ECONNREFUSED' });
    assert.equal(failedPortState(new Error('Patroni API: connect ECONNREFUSED', { cause: refused })), 'refused');
    assert.equal(failedPortState(new Error('outer', { cause: new Error('no answer within 500 ms') })), 'timeout');
    assert.equal(failedPortState(Object.assign(new Error('x'), { code: 'EHOSTUNREACH' })), 'unreachable');
    assert.equal(failedPortState('not an error'), 'unreachable');
  });
});
