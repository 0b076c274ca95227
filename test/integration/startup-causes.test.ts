// Start-up failures name their cause: each fault is caused for real on a real
// local cluster (127.0.219.x), and `local up` must stop early with the member,
// the log lines and the fix; doctor's member-logs check and status must name
// it too. Every fault is undone in `finally`, and the cluster is removed after.
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DoctorReport } from '../../src/doctor/run.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { createCa, issue } from '../../src/pki/certs.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';

describe('local up, doctor and status name why a member cannot start', { timeout: 600_000 }, () => {
  let c: TestCluster;
  const pidOf = async (id: string) => Number((await readFile(`${c.stateDir}/pids/${id}.pid`, 'utf8')).trim());
  /** Stops one member's Patroni (it stops its PostgreSQL first) and waits until its pid file says so. */
  const stopMember = async (member: string) => {
    process.kill(await pidOf(`patroni-${member}`), 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as LocalStatus;
      const m = status.members.find((x) => x.name === member)!;
      if (!m.apiReachable && m.down === 'not running') {
        // PostgreSQL is gone too once its postmaster.pid is removed.
        const pid = await readFile(`${c.stateDir}/pg/${member}/data/postmaster.pid`, 'utf8').catch(() => '');
        if (!pid) return status;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`patroni-${member} did not stop within 60 s`);
  };
  const memberLogs = async () => {
    const doctor = JSON.parse((await c.cli(['local', 'doctor', '--json'])).stdout) as DoctorReport;
    return doctor.findings.find((x) => x.id === 'member-logs')!;
  };
  const upAgain = async () => {
    const r = await c.cli(['local', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    c = await makeTestCluster('it-causes', 219);
    await upAgain();
  });
  after(async () => {
    await c?.cleanup();
  });

  it('a Python module Patroni needs, hidden from it: up stops at once with the module and its Debian package', async () => {
    // A Python path whose sitecustomize hides python-etcd, as a machine without python3-etcd would.
    const hide = join(c.dir, 'hide-etcd');
    await mkdir(hide, { recursive: true });
    await writeFile(
      join(hide, 'sitecustomize.py'),
      [
        'import sys',
        'class _Hide:',
        '    def find_spec(self, name, path=None, target=None):',
        "        if name.split('.')[0] == 'etcd':",
        `            raise ModuleNotFoundError(f"No module named '{name}'", name=name)`,
        'sys.meta_path.insert(0, _Hide())',
        '',
      ].join('\n'),
    );
    const bin = join(c.dir, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'patroni'), `#!/bin/sh\nPYTHONPATH=${hide} exec /usr/bin/patroni "$@"\n`, { mode: 0o755 });
    await stopMember('node2');
    const r = await c.cli(['local', 'up', '--timeout', '120'], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /error: patroni-node2 exited while waiting for a PostgreSQL leader/);
    assert.match(r.stderr, /Patroni could not load its etcd3 support/);
    assert.match(r.stderr, /Can not find suitable configuration of distributed configuration store/);
    assert.match(r.stderr, /hint: sudo apt-get install -y python3-etcd/);
    assert.doesNotMatch(r.stderr, /timed out/, 'up stopped at the cause, not at its deadline');
    const f = await memberLogs();
    assert.equal(f.status, 'fail', JSON.stringify(f));
    assert.match(f.summary, /patroni-node2: Patroni could not load its etcd3 support/);
    assert.match(f.fix!, /apt-get install -y python3-etcd/);
    await upAgain();
  });

  it("a data directory PostgreSQL refuses: up stops with the directory and the chmod; doctor's member-logs names it", async () => {
    await stopMember('node3');
    const dir = `${c.stateDir}/pg/node3/data`;
    await chmod(dir, 0o777);
    try {
      const r = await c.cli(['local', 'up', '--timeout', '120']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /error: patroni-node3 cannot start/);
      assert.match(r.stderr, new RegExp(`PostgreSQL refuses its data directory ${dir}`));
      assert.match(r.stderr, /FATAL: {1,2}data directory .* has invalid permissions/);
      assert.match(r.stderr, new RegExp(`hint: chmod 0700 ${dir}`));
      const f = await memberLogs();
      assert.equal(f.status, 'fail', JSON.stringify(f));
      assert.match(f.summary, /patroni-node3: PostgreSQL refuses its data directory/);
    } finally {
      await chmod(dir, 0o700);
    }
    await upAgain();
  });

  it('a member certificate etcd does not trust: up stops with etcd refusing it, status says why the member is down', async () => {
    await stopMember('node1');
    const tls = `${c.stateDir}/pg/node1/tls`;
    await copyFile(`${tls}/server.crt`, `${c.dir}/server.crt.orig`);
    await copyFile(`${tls}/server.key`, `${c.dir}/server.key.orig`);
    // Same names and addresses, another CA: what a certificate copied from another cluster looks like.
    const foreign = await issue(await createCa('another cluster CA'), {
      commonName: 'node1',
      ips: [`${c.prefix}.11`, `${c.prefix}.10`],
      dnsNames: ['node1', 'localhost'],
      usage: 'server-and-client',
    });
    await writeFile(`${tls}/server.crt`, foreign.cert);
    await writeFile(`${tls}/server.key`, foreign.key);
    try {
      const r = await c.cli(['local', 'up', '--timeout', '120']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /error: patroni-node1 cannot start/);
      assert.match(r.stderr, /patroni-node1: etcd refuses its client certificate/);
      assert.match(r.stderr, /hint: the member's certificate must come from the cluster's CA/);
      const status = JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as LocalStatus;
      assert.ok(
        status.problems.some((p) => /^Patroni node1 does not answer on its REST API \(running, but etcd refuses its client certificate/.test(p)),
        status.problems.join('\n'),
      );
      const f = await memberLogs();
      assert.equal(f.status, 'fail', JSON.stringify(f));
      assert.match(f.summary, /patroni-node1: etcd refuses its client certificate/);
    } finally {
      await copyFile(`${c.dir}/server.crt.orig`, `${tls}/server.crt`);
      await copyFile(`${c.dir}/server.key.orig`, `${tls}/server.key`);
    }
    // The member that is running with the wrong certificate must be restarted to read the right one.
    await stopMember('node1');
    await upAgain();
  });
});
