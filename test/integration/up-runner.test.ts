// `gardenos up` on hosts without systemd: GardenOS's small service runner
// (src/remote/services.ts) for hosts whose init is not systemd — a container
// used as a host, say. Three network-namespace hosts (test/helpers/ssh-hosts.ts:
// 10.252.223.11–13, each a real OpenSSH server with private /etc and /var/lib
// directories, no init at all): up installs the runner, forms a real 3-member
// etcd with mutual TLS and starts HAProxy through it; a second run has nothing
// to do; a killed etcd is reported and started again by the next run; reset
// stops everything and removes the runner. Everything else of `up` is proven on
// hosts that boot systemd (up.test.ts, systemd-hosts.test.ts). Needs root.
import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../src/clients/etcd.ts';
import type { UpResult } from '../../src/remote/up.ts';
import { runCli } from '../helpers/local.ts';
import { startTestHosts, type TestHosts } from '../helpers/ssh-hosts.ts';

const asRoot = process.getuid?.() === 0;
const K3S_PHASES = ['k3s', 'kubeconfig', 'manifests', 'database'];

describe('gardenos up on hosts without systemd (the service runner)', {
  timeout: 300_000,
  skip: asRoot ? false : 'needs root to create network namespaces (see README)',
}, () => {
  let t: TestHosts;
  let configFile: string;
  const cli = (args: string[]) => runCli([...args, '-c', configFile, '--known-hosts', t.knownHosts]);
  const up = async (...args: string[]) => {
    const r = await cli(['up', '--json', '--skip', ...K3S_PHASES, ...args]);
    return { ...r, result: r.code === 0 ? (JSON.parse(r.stdout) as UpResult) : undefined };
  };

  before(async () => {
    t = await startTestHosts('uprun', 223);
    configFile = join(t.dir, 'gardenos.yaml');
    await writeFile(
      configFile,
      `cluster: { name: it-uprun }
nodes:
${t.hosts.map((h) => `  - name: ${h.name}\n    address: { public: ${h.address}, private: ${h.address} }\n    ssh: { user: root, keyPath: ${t.keyFile} }`).join('\n')}
haproxy: { address: ${t.hosts[0]!.address} }
`,
    );
  });
  after(async () => {
    await t?.cleanup();
  });

  it('installs the runner, forms etcd with mutual TLS and starts HAProxy through it; a second run changes nothing', async () => {
    const r = await up('--trust-new-host-keys');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.result!.hosts.map((h) => [h.name, h.services]),
      t.hosts.map((h) => [h.name, 'runner']),
    );
    for (const h of t.hosts) {
      const mine = r.result!.changes.filter((c) => c.host === h.name).map((c) => c.action);
      assert.ok(mine.includes('create /var/lib/gardenos/bin/gardenos-svc (755)'), mine.join('\n'));
      // The runner's pid file names a live etcd (the hosts' directories are visible from here).
      const pid = Number((await readFile(h.path('/var/lib/gardenos/svc/etcd.pid'), 'utf8')).trim());
      assert.doesNotThrow(() => process.kill(pid, 0), `${h.name}: etcd (pid ${pid}) runs`);
    }
    const pki = join(t.dir, '.gardenos', 'secrets', 'pki');
    const etcd = new EtcdClient(
      t.hosts.map((h) => `https://${h.address}:2379`),
      { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
      { timeoutMs: 3000 },
    );
    try {
      const statuses = await etcd.statuses();
      assert.deepEqual(
        statuses.map((s) => s.ok),
        [true, true, true],
      );
      assert.equal(statuses.filter((s) => s.isLeader).length, 1);
    } finally {
      etcd.close();
    }
    assert.deepEqual((await up()).result!.changes, []);
  });

  it('starts an etcd that died again on the next run (the runner does not restart it by itself)', async () => {
    const pid = Number((await readFile(t.hosts[1]!.path('/var/lib/gardenos/svc/etcd.pid'), 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
    const r = await up();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.result!.changes.map((c) => `${c.host} ${c.action}`),
      ['h2 start etcd'],
    );
  });

  it('reset stops everything and removes the runner and the files', async () => {
    const r = await cli(['reset', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    for (const h of t.hosts) {
      await assert.rejects(access(h.path('/etc/gardenos/etcd/etcd.yml')));
      await assert.rejects(access(h.path('/var/lib/gardenos/bin')));
      await assert.rejects(access(h.path('/var/lib/etcd/member')));
    }
  });
});
