// `gardenos local doctor`, `status` and `db` against a real local cluster
// (127.0.216.x): doctor is quiet when healthy, and names each fault the test
// causes. (The Kubernetes checks run against a real API server: kube-platform.test.ts.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { PatroniClient } from '../../src/clients/patroni.ts';
import type { Finding } from '../../src/doctor/checks.ts';
import type { DoctorReport } from '../../src/doctor/run.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import type { OperationResult } from '../../src/ops/patroni.ts';
import { waitFor } from '../../src/util/wait.ts';
import { CLI, makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

describe('gardenos local doctor, status and db operations on a real cluster', { timeout: 900_000 }, () => {
  let c: TestCluster;
  const json = <T>(s: string) => JSON.parse(s) as T;
  const status = async () => json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout);
  const doctor = async (...args: string[]) => {
    const r = await c.cli(['local', 'doctor', '--json', ...args]);
    return { code: r.code, report: json<DoctorReport>(r.stdout) };
  };
  const finding = (r: DoctorReport, id: string) => r.findings.find((f) => f.id === id)!;
  /** Runs doctor until the check reports `status`, so a fault that takes a moment to show is awaited, never slept for. */
  const doctorUntil = (id: string, want: Finding['status'], ...args: string[]) =>
    waitFor(
      `doctor to report ${id} ${want}`,
      async () => {
        const { code, report } = await doctor(...args);
        const f = finding(report, id);
        if (f.status !== want) throw new Error(`${id} is ${f.status}: ${f.summary}`);
        return { code, f, report };
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  const pidOf = async (id: string) => Number((await readFile(`${c.stateDir}/pids/${id}.pid`, 'utf8')).trim());
  const members = async () => (await status()).members;
  const roleHolder = async (role: string) => (await members()).find((m) => m.role === role)!;
  /** Edits a member's patroni.yml for the length of `fn`, then puts the original back. */
  const withEditedConfig = async (member: string, edit: (text: string) => string, fn: () => Promise<void>) => {
    const file = `${c.stateDir}/pg/${member}/patroni.yml`;
    const original = await readFile(file, 'utf8');
    await writeFile(file, edit(original));
    try {
      await fn();
    } finally {
      await writeFile(file, original);
    }
  };

  before(async () => {
    c = await makeTestCluster('it-doc', 216, 'router: { replicaMaxLagBytes: 262144 }');
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('doctor is quiet on a healthy cluster (exit 0, every check ok or skipped)', async () => {
    const r = await c.cli(['local', 'doctor']);
    const { report } = await doctor();
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(
      report.findings.filter((f) => f.status !== 'ok' && f.status !== 'skip').map((f) => `${f.id}: ${f.summary}`),
      [],
    );
    assert.ok(report.counts.ok >= 10, JSON.stringify(report.counts));
    assert.match(r.stdout, /^\d+ checks on it-doc: \d+ ok, 0 warnings, 0 failed/m);
    assert.doesNotMatch(r.stdout, /FAIL|WARN/);
  });

  it('db switchover moves the leader to a healthy replica and reports it', async () => {
    const before = (await roleHolder('leader')).name;
    const refused = await c.cli(['local', 'db', 'switchover']);
    assert.equal(refused.code, 1, 'no terminal and no --yes: refused');
    assert.match(refused.stderr, /refusing to switchover it-doc without confirmation/);
    assert.equal((await roleHolder('leader')).name, before, 'nothing changed');
    const r = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = json<OperationResult>(r.stdout);
    assert.equal(result.before.leader, before);
    assert.notEqual(result.after.leader, before);
    await waitFor('the cluster healthy again', async () => (await status()).healthy, { timeoutMs: 90_000, intervalMs: 500 });
    assert.equal((await roleHolder('leader')).name, result.after.leader);
  });

  it('db failover needs a member to promote, and refuses a member that does not exist', async () => {
    const none = await c.cli(['local', 'db', 'failover', '--yes']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /a failover needs the member to promote: --to MEMBER/);
    const ghost = await c.cli(['local', 'db', 'failover', '--to', 'node9', '--yes']);
    assert.match(ghost.stderr, /no member called "node9" in cluster it-doc/);
  });

  it('status shows a stopped member at the next refresh and exits 2', async () => {
    const replica = await roleHolder('replica');
    process.kill(await pidOf(`patroni-${replica.name}`), 'SIGKILL');
    const s = await c.cli(['local', 'status', '--json']);
    assert.equal(s.code, 2);
    const row = json<LocalStatus>(s.stdout).members.find((m) => m.name === replica.name)!;
    assert.equal(row.apiReachable, false);
    assert.ok(json<LocalStatus>(s.stdout).problems.some((p) => p.includes(`Patroni ${replica.name} does not answer`)));
    const { f } = await doctorUntil('patroni-members', 'fail');
    assert.match(f.summary, new RegExp(`Patroni on ${replica.name} does not answer`));
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
  });

  it('status --watch refreshes until interrupted, one JSON document per refresh', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [CLI, 'local', '-c', c.configFile, '--state-dir', c.stateDir, 'status', '--watch', '--json', '--interval', '0.5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('two refreshes', async () => out.split('\n').filter(Boolean).length >= 2, { timeoutMs: 30_000, intervalMs: 100 });
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0);
    const docs = out
      .split('\n')
      .filter(Boolean)
      .map((l) => json<LocalStatus>(l));
    assert.ok(docs.length >= 2 && docs.every((d) => d.cluster === 'it-doc' && d.members.length === 3));
  });

  it('doctor names Patroni configured for the etcd v2 API', async () => {
    await withEditedConfig(
      'node2',
      (t) => t.replace(/^etcd3:/m, 'etcd:'),
      async () => {
        const { code, f } = await doctorUntil('patroni-etcd-v2', 'fail');
        assert.equal(code, 2);
        assert.match(f.summary, /node2 configured for the etcd v2 API/);
        assert.ok(
          f.evidence.some((e) => e.endsWith('node2/patroni.yml: etcd:')),
          f.evidence.join('\n'),
        );
        assert.match(f.fix!, /etcd3:/);
      },
    );
  });

  it('doctor names Patroni talking plain HTTP to an etcd that serves only TLS', async () => {
    await withEditedConfig(
      'node3',
      (t) => t.replace(/protocol: https/, 'protocol: http'),
      async () => {
        const { f } = await doctorUntil('patroni-etcd-tls', 'fail');
        assert.match(f.summary, /node3 talks plain HTTP to etcd, which serves only HTTPS/);
        assert.ok(
          f.evidence.some((e) => /^http:\/\/127\.0\.216\.11:2379\/version: /.test(e)),
          f.evidence.join('\n'),
        );
      },
    );
  });

  it('doctor names a data directory PostgreSQL would refuse', async () => {
    const dir = `${c.stateDir}/pg/node1/data`;
    await chmod(dir, 0o777);
    try {
      const { f } = await doctorUntil('pgdata-permissions', 'fail');
      assert.match(f.summary, /data directory of node1 has the wrong owner or mode/);
      assert.ok(
        f.evidence.some((e) => e.startsWith(`${dir}: mode 0777, uid `)),
        f.evidence.join('\n'),
      );
      assert.match(f.fix!, new RegExp(`chmod 700 ${dir}`));
    } finally {
      await chmod(dir, 0o700);
    }
  });

  it('doctor names pg_hba refusing a client network, and clients refused for not using TLS', async () => {
    const leader = (await roleHolder('leader')).name;
    const { restApiPassword } = json<{ restApiPassword: string }>(await readFile(`${c.stateDir}/secrets/passwords.json`, 'utf8'));
    const api = new PatroniClient(`https://127.0.216.${10 + Number(leader.slice(4))}:8008`, {
      caFile: `${c.stateDir}/pki/ca.crt`,
      auth: { username: 'patroni', password: restApiPassword },
    });
    // As the journal's cluster did for the pod network: no `hostssl all all` line for the client network.
    try {
      await withEditedConfig(
        leader,
        (t) => t.replace(/^\s*- hostssl all all 127\.0\.0\.0\/8 scram-sha-256\n/gm, ''),
        async () => {
          assert.equal((await api.call('POST', '/reload')).status, 202);
          const { f } = await doctorUntil('pg-hba', 'fail');
          assert.match(f.summary, /pg_hba refuses TLS clients from 127\.0\.0\.0\/8/);
          assert.ok(
            f.evidence.some((e) => /^127\.0\.0\.0\/8 over TLS → line \d+: host 0\.0\.0\.0\/0\.0\.0\.0 reject$/.test(e)),
            f.evidence.join('\n'),
          );
        },
      );
    } finally {
      // The original file is back; Patroni applies it again.
      assert.equal((await api.call('POST', '/reload')).status, 202);
    }
    await doctorUntil('pg-hba', 'ok');
    // A client without TLS is refused by design; doctor says who and why.
    const plain = new pg.Client({
      connectionString: (await withPassword((await status()).endpoints.primary, c.stateDir)).replace(/\?.*$/, '?sslmode=disable'),
    });
    await assert.rejects(plain.connect(), /no encryption/);
    const { f } = await doctorUntil('pg-hba', 'warn');
    assert.ok(
      f.evidence.some((e) => /rejects connection for host .*no encryption/.test(e)),
      f.evidence.join('\n'),
    );
    assert.match(f.fix!, /sslmode=verify-full/);
  });

  it('doctor names a replica whose lag is past the limit', async () => {
    const replica = await roleHolder('replica');
    const postmaster = Number((await readFile(`${c.stateDir}/pg/${replica.name}/data/postmaster.pid`, 'utf8')).split('\n')[0]);
    const { stdout } = await run('pgrep', ['-P', String(postmaster), '-f', 'walreceiver']);
    const walreceiver = Number(stdout.trim().split('\n')[0]);
    assert.ok(walreceiver > 0, 'the replica has a WAL receiver');
    process.kill(walreceiver, 'SIGSTOP');
    try {
      const client = new pg.Client({ connectionString: await withPassword((await status()).endpoints.primary, c.stateDir) });
      await client.connect();
      try {
        await client.query('CREATE TABLE IF NOT EXISTS ballast AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 5000) g');
        await client.query('INSERT INTO ballast SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 5000) g');
      } finally {
        await client.end();
      }
      // Right after the writes the synchronous standby can look behind too: Patroni's member keys, which the lag
      // comes from, refresh every loop_wait. It catches up within a loop; the stopped replica does not.
      const f = await waitFor(
        'doctor to name only the stopped replica as lagging',
        async () => {
          const x = finding((await doctor()).report, 'replication');
          if (x.status !== 'warn' || !x.summary.startsWith(`${replica.name} is `)) throw new Error(`replication is ${x.status}: ${x.summary}`);
          return x;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      assert.match(f.summary, new RegExp(`${replica.name} is more than 262144 bytes behind`));
    } finally {
      process.kill(walreceiver, 'SIGCONT');
    }
    await doctorUntil('replication', 'ok');
  });

  it('doctor names HAProxy down and the router gone (postgres-primary no longer kept on the leader)', async () => {
    process.kill(await pidOf('haproxy'), 'SIGTERM');
    process.kill(await pidOf('router'), 'SIGTERM');
    const hap = await doctorUntil('haproxy-backends', 'fail');
    assert.match(hap.f.summary, /HAProxy does not answer/);
    const { f } = await doctorUntil('primary-endpoint', 'fail');
    assert.match(f.summary, /the router does not answer/);
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    await doctorUntil('primary-endpoint', 'ok');
  });

  it('doctor names an unhealthy etcd member', async () => {
    const pid = await pidOf('etcd-node3');
    process.kill(pid, 'SIGTERM');
    const { f } = await doctorUntil('etcd-health', 'warn');
    assert.match(f.summary, /etcd node3 not healthy; the cluster keeps quorum/);
    // An etcd that stopped answering may still hold its ports while it exits: `up` would rightly refuse them.
    await waitFor(
      'etcd node3 to exit',
      async () => {
        try {
          process.kill(pid, 0);
          return undefined;
        } catch {
          return true;
        }
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const up = await c.cli(['local', 'up']);
    assert.equal(up.code, 0, up.stderr);
    await doctorUntil('etcd-health', 'ok');
  });

  describe('host checks', () => {
    it('names docker group membership that is not active in this shell', async () => {
      const { gatherHostFacts } = await import('../../src/doctor/facts.ts');
      const { runChecks, CHECKS } = await import('../../src/doctor/checks.ts');
      const groupFile = `${c.dir}/group`;
      await writeFile(groupFile, 'root:x:0:\ndocker:x:998:alice,bob\n');
      const check = CHECKS.filter((x) => x.id === 'docker-group');
      const [inactive] = runChecks({ host: await gatherHostFacts({ user: 'alice', uid: 1000, activeGroups: [1000, 27], groupFile }) }, check);
      assert.equal(inactive!.status, 'fail');
      assert.match(inactive!.fix!, /newgrp docker/);
      const [active] = runChecks({ host: await gatherHostFacts({ user: 'alice', uid: 1000, activeGroups: [1000, 998], groupFile }) }, check);
      assert.equal(active!.status, 'ok');
    });

    it('names a docker0 bridge without its IPv4 address (in a network namespace the test creates)', {
      skip: asRoot ? false : 'needs root to create a network namespace (see README)',
    }, async () => {
      const { gatherHostFacts } = await import('../../src/doctor/facts.ts');
      const { runChecks, CHECKS } = await import('../../src/doctor/checks.ts');
      const ns = `gos-doctor-${process.pid}`;
      await run('ip', ['netns', 'add', ns]);
      try {
        await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'docker0', 'type', 'bridge']);
        await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'docker0', 'up']);
        const check = CHECKS.filter((x) => x.id === 'container-bridge-ipv4');
        const facts = () => gatherHostFacts({ ipCommand: ['ip', 'netns', 'exec', ns, 'ip', '-j', 'addr'] });
        const [bare] = runChecks({ host: await facts() }, check);
        assert.equal(bare!.status, 'fail');
        assert.match(bare!.summary, /docker0 has no IPv4 address/);
        assert.match(bare!.fix!, /systemctl restart docker/);
        await run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '172.17.0.1/16', 'dev', 'docker0']);
        const [fixed] = runChecks({ host: await facts() }, check);
        assert.equal(fixed!.status, 'ok', fixed!.summary);
      } finally {
        await run('ip', ['netns', 'del', ns]);
      }
    });
  });
});
