// `gardenos local` against the real daemons: etcd, Patroni, PostgreSQL 15 and HAProxy.
import assert from 'node:assert/strict';
import { access, readFile, rm, stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { EtcdClient } from '../../src/clients/etcd.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';

async function query(uri: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

function json<T>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`not JSON: ${text.slice(0, 500)}`);
  }
}

describe('gardenos local: a real 3-node etcd + Patroni + HAProxy cluster', { timeout: 600_000 }, () => {
  let c: TestCluster;
  let status: LocalStatus;
  let primary: string;
  let replicas: string;

  before(async () => {
    c = await makeTestCluster('it-life', 211);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('comes up from nothing with a leader, a synchronous standby and HAProxy on the leader', async () => {
    const r = await c.cli(['local', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = json<{ changes: string[]; status: LocalStatus }>(r.stdout);
    status = result.status;
    assert.equal(status.healthy, true, status.problems.join('; '));
    assert.equal(status.members.length, 3);
    assert.equal(status.members.filter((m) => m.role === 'leader').length, 1);
    assert.equal(status.members.filter((m) => m.role === 'sync_standby').length, 1);
    assert.deepEqual(
      status.members.map((m) => m.host),
      [`${c.prefix}.11`, `${c.prefix}.12`, `${c.prefix}.13`],
    );
    assert.ok(status.etcd.every((e) => e.healthy && e.endpoint.startsWith('https://')));
    assert.match(status.endpoints.primary, new RegExp(`^postgresql://postgres@${c.prefix.replaceAll('.', '\\.')}\\.10:5000/postgres\\?sslmode=verify-full`));
    // The generated password is in the 0600 files, never in what the command prints.
    const { superuserPassword } = json<{ superuserPassword: string }>(await readFile(`${c.stateDir}/secrets/passwords.json`, 'utf8'));
    assert.ok(!r.stdout.includes(superuserPassword) && !r.stderr.includes(superuserPassword), 'the password is printed');
    assert.equal((await stat(status.endpoints.passwordFile)).mode & 0o777, 0o600);
    primary = await withPassword(status.endpoints.primary, c.stateDir);
    replicas = await withPassword(status.endpoints.replicas, c.stateDir);
    // Progress went to stderr as JSON lines, one per step.
    const steps = r.stderr
      .trim()
      .split('\n')
      .map((l) => json<{ kind: string; step?: string; status?: string }>(l));
    for (const step of ['preflight', 'state', 'etcd', 'patroni', 'haproxy']) {
      assert.ok(
        steps.some((e) => e.kind === 'step' && e.step === step && e.status === 'done'),
        `step ${step} reported`,
      );
    }
  });

  it('keeps generated secrets 0600 and serves etcd only over mutual TLS', async () => {
    const s = await stat(`${c.stateDir}/secrets/passwords.json`);
    assert.equal(s.mode & 0o777, 0o600);
    assert.equal((await stat(`${c.stateDir}/pki/ca.key`)).mode & 0o777, 0o600);
    // Plain HTTP to the client port is refused…
    await assert.rejects(fetch(`http://${c.prefix}.11:2379/version`, { signal: AbortSignal.timeout(3000) }));
    // …and so is TLS without a client certificate.
    const withCert = new EtcdClient([`https://${c.prefix}.11:2379`], {
      ca: `${c.stateDir}/pki/ca.crt`,
      cert: `${c.stateDir}/pki/gardenos-client.crt`,
      key: `${c.stateDir}/pki/gardenos-client.key`,
    });
    try {
      assert.equal((await withCert.status(`https://${c.prefix}.11:2379`)).ok, true, 'with the client certificate it answers');
    } finally {
      withCert.close();
    }
    const res = await new Promise<number | string>((resolve) => {
      import('node:https').then(({ request }) => {
        const req = request(`https://${c.prefix}.11:2379/v3/maintenance/status`, { method: 'POST', rejectUnauthorized: false, timeout: 3000 }, (r) =>
          resolve(r.statusCode ?? 0),
        );
        req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        req.end('{}');
      });
    });
    assert.notEqual(res, 200, `a client without a certificate got ${res}`);
  });

  it('writes through the primary port and reads the row back through the replicas port', async () => {
    await query(primary, 'CREATE TABLE garden (id int PRIMARY KEY, note text)');
    await query(primary, 'INSERT INTO garden VALUES (1, $1)', ['tomatoes']);
    const primaryRole = await query(primary, 'SELECT pg_is_in_recovery() AS r');
    assert.equal(primaryRole.rows[0].r, false, 'the primary port reaches the primary');
    // The replicas port balances over standbys; every one of them must have the row (asynchronous ones soon).
    for (let i = 0; i < 4; i++) {
      const row = await waitFor(
        'the row on a replica',
        async () => {
          const r = await query(replicas, 'SELECT note, pg_is_in_recovery() AS r FROM garden WHERE id = 1');
          return r.rows[0];
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      assert.equal(row.note, 'tomatoes');
      assert.equal(row.r, true, 'the replicas port reaches a standby');
    }
  });

  it('changes nothing when run again on a healthy cluster', async () => {
    const r = await c.cli(['local', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(json<{ changes: string[] }>(r.stdout).changes, []);
  });

  it('restarts a dead member and touches nothing else', async () => {
    const replica = status.members.find((m) => m.role !== 'leader')!.name;
    const pidFile = `${c.stateDir}/pids/patroni-${replica}.pid`;
    process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
    const r = await c.cli(['local', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { changes } = json<{ changes: string[] }>(r.stdout);
    assert.equal(changes.length, 1, changes.join('; '));
    assert.match(changes[0]!, new RegExp(`^started patroni-${replica} \\(pid \\d+\\)$`));
  });

  it('reports status as JSON with members, roles, timelines and lag, exit 0 when healthy', async () => {
    const r = await c.cli(['local', 'status', '--json']);
    assert.equal(r.code, 0, r.stdout);
    const s = json<LocalStatus>(r.stdout);
    for (const m of s.members) {
      assert.equal(typeof m.timeline, 'number');
      assert.equal(typeof m.lagBytes, 'number');
      assert.ok(['leader', 'sync_standby', 'replica'].includes(m.role));
    }
    assert.ok(s.endpoints.primary.startsWith('postgresql://') && s.endpoints.replicas.startsWith('postgresql://'));
  });

  it("dcs show lists the scope's keys; dcs clean refuses on a live cluster and deletes nothing", async () => {
    const show = await c.cli(['local', 'dcs', 'show', '--json']);
    assert.equal(show.code, 0, show.stderr);
    const keys = json<Record<string, string>>(show.stdout);
    assert.ok('/service/it-life/leader' in keys && '/service/it-life/initialize' in keys, Object.keys(keys).join(', '));
    assert.equal(Object.keys(keys).filter((k) => k.startsWith('/service/it-life/members/')).length, 3);
    const clean = await c.cli(['local', 'dcs', 'clean', '--yes']);
    assert.equal(clean.code, 1);
    assert.match(clean.stderr, /refusing to clean \/service\/it-life\/: the cluster is alive/);
    assert.match(clean.stderr, /the leader key is held by node\d/);
    assert.match(clean.stderr, /Patroni on node1 answers on its REST API/);
    assert.equal(Object.keys(json<Record<string, string>>((await c.cli(['local', 'dcs', 'show', '--json'])).stdout)).length, Object.keys(keys).length);
  });

  it('refuses to destroy without confirmation and keeps everything', async () => {
    const r = await c.cli(['local', 'destroy']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to destroy "it-life" without confirmation/);
    assert.match(r.stderr, /hint: run it again with --yes/);
    await access(`${c.stateDir}/secrets/passwords.json`);
  });

  it('keeps the data across down and up', async () => {
    const down = await c.cli(['local', 'down']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await c.processes(), [], 'nothing of the cluster runs after down');
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const r = await query(primary, 'SELECT note FROM garden WHERE id = 1');
    assert.equal(r.rows[0]?.note, 'tomatoes');
  });

  it('names stale Patroni state in etcd and deletes nothing', async () => {
    assert.equal((await c.cli(['local', 'down'])).code, 0);
    // An earlier cluster of the same scope whose data is gone: etcd still holds its keys.
    for (const m of ['node1', 'node2', 'node3']) await rm(`${c.stateDir}/pg/${m}/data`, { recursive: true, force: true });
    const r = await c.cli(['local', 'up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /etcd holds Patroni state for scope "it-life" \(initialize=\d+/);
    assert.match(r.stderr, /Nothing was deleted/);
    // doctor names it too, with the key as evidence and the command that fixes it.
    const doc = await c.cli(['local', 'doctor', '--json']);
    assert.equal(doc.code, 2);
    const stale = json<{ findings: { id: string; status: string; evidence: string[]; fix?: string }[] }>(doc.stdout).findings.find(
      (f) => f.id === 'dcs-stale-state',
    )!;
    assert.equal(stale.status, 'fail');
    assert.ok(
      stale.evidence.some((e) => /^\/service\/it-life\/initialize = \d+$/.test(e)),
      stale.evidence.join('\n'),
    );
    assert.match(stale.fix!, /gardenos local dcs clean/);
    const etcd = new EtcdClient([`https://${c.prefix}.11:2379`], {
      ca: `${c.stateDir}/pki/ca.crt`,
      cert: `${c.stateDir}/pki/gardenos-client.crt`,
      key: `${c.stateDir}/pki/gardenos-client.key`,
    });
    try {
      assert.notEqual(await etcd.get('/service/it-life/initialize'), null, 'the initialize key is still there');
    } finally {
      etcd.close();
    }
  });

  it('dcs clean backs the stale keys up and removes them, dcs restore puts them back, and up then starts afresh', async () => {
    const clean = await c.cli(['local', 'dcs', 'clean', '--yes', '--json']);
    assert.equal(clean.code, 0, clean.stderr);
    const { backup, deleted } = json<{ backup: string; deleted: string[] }>(clean.stdout);
    assert.ok(deleted.includes('/service/it-life/initialize'), deleted.join(', '));
    assert.equal((await stat(backup)).mode & 0o777, 0o600);
    assert.deepEqual(json<Record<string, string>>((await c.cli(['local', 'dcs', 'show', '--json'])).stdout), {});
    const restore = await c.cli(['local', 'dcs', 'restore', backup, '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.ok(json<{ restored: string[] }>(restore.stdout).restored.includes('/service/it-life/initialize'));
    assert.equal((await c.cli(['local', 'dcs', 'clean', '--yes'])).code, 0);
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(json<{ status: LocalStatus }>(up.stdout).status.healthy, true);
  });

  it('destroy --yes leaves no process and no state behind', async () => {
    const r = await c.cli(['local', 'destroy', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await c.processes(), []);
    await assert.rejects(access(c.stateDir));
  });
});
