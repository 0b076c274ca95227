// `gardenos up` over real SSH to three hosts that boot systemd (test/helpers/systemd-hosts.ts:
// systemd-nspawn containers at 10.252.219.11–13, Debian 12 with its OpenSSH, etcd and HAProxy):
// host keys verified, a dry run that changes nothing, a real 3-member etcd with mutual TLS and
// HAProxy on every host through their systemd units, a second run with no changes, a dry run that
// lists exactly an edit, the K3s plan in order, a host that is down, a wrong host key, a failure
// halfway, the kubeconfig and manifests phases against a real Kubernetes API server on h1 and the
// hosts' etcd, and reset. (systemd-hosts.test.ts proves the units themselves: users, restarts,
// reboots; up-runner.test.ts the runner for hosts without systemd.) Needs root; skipped otherwise,
// as the README says.
import assert from 'node:assert/strict';
import { access, readFile, stat, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { EtcdClient } from '../../src/clients/etcd.ts';
import type { UpResult } from '../../src/remote/up.ts';
import { waitFor } from '../../src/util/wait.ts';
import { startControlPlane } from '../helpers/kube.ts';
import { runCli, type CliResult } from '../helpers/local.ts';
import { startSystemdHosts, type SystemdHosts } from '../helpers/systemd-hosts.ts';

const asRoot = process.getuid?.() === 0;
const K3S_PHASES = ['k3s', 'kubeconfig', 'manifests', 'database'];

describe('gardenos up over SSH to three test hosts', {
  timeout: 600_000,
  skip: asRoot ? false : 'needs root for network namespaces and systemd-nspawn containers (see README)',
}, () => {
  let t: SystemdHosts;
  let configFile: string;
  const yaml = (extra = '') => `cluster: { name: it-up }
nodes:
${t.hosts.map((h) => `  - name: ${h.name}\n    address: { public: ${h.address}, private: ${h.address} }\n    ssh: { user: root, keyPath: ${t.keyFile} }`).join('\n')}
haproxy: { address: ${t.hosts[0]!.address}${extra} }
`;
  const cli = (args: string[]): Promise<CliResult> => runCli([...args, '-c', configFile, '--known-hosts', t.knownHosts]);
  const up = async (...args: string[]) => {
    const r = await cli(['up', '--json', ...args]);
    return { ...r, result: r.code === 0 ? (JSON.parse(r.stdout) as UpResult) : undefined };
  };

  before(async () => {
    t = await startSystemdHosts('up', 219);
    configFile = join(t.dir, 'gardenos.yaml');
    await writeFile(configFile, yaml());
  });
  after(async () => {
    await t?.cleanup();
  });

  it('refuses hosts whose keys known_hosts does not list, naming each with its fingerprint', async () => {
    const r = await cli(['up', '--dry-run']);
    assert.equal(r.code, 1);
    for (const h of t.hosts)
      assert.match(r.stderr, new RegExp(`${h.name} \\(${h.address.replaceAll('.', '\\.')}\\) is not in .*known_hosts; its host key is SHA256:`));
    assert.match(r.stderr, /--trust-new-host-keys/);
    assert.equal((await readFile(t.knownHosts, 'utf8')).trim(), '', 'nothing recorded without the flag');
  });

  it('--dry-run with --trust-new-host-keys records the keys, plans every file and start, and changes nothing on the hosts', async () => {
    const r = await up('--dry-run', '--trust-new-host-keys', '--skip', ...K3S_PHASES);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await readFile(t.knownHosts, 'utf8')).trim().split('\n').length, 3);
    const changes = r.result!.changes;
    for (const h of t.hosts) {
      const mine = changes.filter((c) => c.host === h.name).map((c) => c.action);
      assert.ok(mine.includes('create /etc/gardenos/etcd/etcd.yml (644)'), mine.join('\n'));
      assert.ok(mine.includes(`create /etc/gardenos/pki/etcd-${h.name}.key (600)`));
      assert.ok(mine.includes('start etcd (new cluster)'));
      // Debian's packages left their own units running: HAProxy is restarted with GardenOS's configuration,
      // and the package's plain-HTTP etcd is stopped and masked before GardenOS's starts.
      assert.ok(mine.includes('restart haproxy (configuration changed)'), mine.join('\n'));
      assert.ok(mine.includes("stop and mask etcd.service (the package's own plain-HTTP etcd on localhost)"), mine.join('\n'));
    }
    await assert.rejects(access(t.hosts[0]!.path('/etc/gardenos/etcd/etcd.yml')), 'a dry run wrote a file');
  });

  it('forms a 3-member etcd cluster with mutual TLS and starts HAProxy on every host', async () => {
    const r = await up('--skip', ...K3S_PHASES);
    assert.equal(r.code, 0, r.stderr);
    // Progress per phase and per host, as JSON lines.
    const events = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step?: string; member?: string; status?: string });
    for (const h of t.hosts) assert.ok(events.some((e) => e.step === 'facts' && e.member === h.name && e.status === 'done'));
    assert.ok(events.some((e) => e.step === 'verify' && e.status === 'done'));
    // The key files are 0600 on the hosts; the etcd cluster answers only with a client certificate.
    assert.equal((await stat(t.hosts[1]!.path('/etc/gardenos/pki/etcd-h2.key'))).mode & 0o777, 0o600);
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
      await etcd.put('/it-up/hello', 'hosts');
      assert.equal(await etcd.get('/it-up/hello'), 'hosts');
    } finally {
      etcd.close();
    }
  });

  it('changes nothing when run again', async () => {
    const r = await up('--skip', ...K3S_PHASES);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result!.changes, []);
    const human = await cli(['up', '--skip', ...K3S_PHASES]);
    assert.match(human.stdout, /no changes: the hosts already run what gardenos.yaml describes/);
  });

  it('status reads the platform over the network: etcd and HAProxy answer, PostgreSQL is not deployed yet (exit 2)', async () => {
    const r = await runCli(['status', '-c', configFile, '--json']);
    assert.equal(r.code, 2, r.stderr);
    const s = JSON.parse(r.stdout) as {
      etcd: { healthy: boolean; leader: boolean }[];
      haproxy: { node: string; reachable: boolean; servers: { proxy: string }[] }[];
      problems: string[];
    };
    assert.deepEqual(
      s.etcd.map((e) => e.healthy),
      [true, true, true],
    );
    assert.equal(s.etcd.filter((e) => e.leader).length, 1);
    assert.deepEqual(
      s.haproxy.map((h) => [h.node, h.reachable]),
      [
        ['h1', true],
        ['h2', true],
        ['h3', true],
      ],
    );
    assert.ok(s.haproxy[0]!.servers.some((x) => x.proxy === 'postgres-primary'));
    assert.ok(s.problems.includes('PostgreSQL has no leader'), s.problems.join('; '));
    const human = await runCli(['status', '-c', configFile]);
    assert.match(human.stdout, /^platform it-up — DEGRADED/);
    assert.match(human.stdout, /^h1\s+https:\/\/10\.252\.219\.11:2379\s+healthy/m);
  });

  it('--dry-run after an edit lists exactly the changed file and the restart on each host', async () => {
    await writeFile(configFile, yaml(', checkIntervalMs: 2000'));
    const r = await up('--dry-run', '--skip', ...K3S_PHASES);
    assert.equal(r.code, 0, r.stderr);
    const expected = t.hosts.flatMap((h) => [`${h.name} update /etc/haproxy/haproxy.cfg (644)`, `${h.name} restart haproxy (configuration changed)`]).sort();
    assert.deepEqual(r.result!.changes.map((c) => `${c.host} ${c.action}`).sort(), expected);
    // Applying it restarts HAProxy only, and the next run is quiet again.
    assert.equal((await up('--skip', ...K3S_PHASES)).code, 0);
    assert.deepEqual((await up('--skip', ...K3S_PHASES)).result!.changes, []);
  });

  it('plans K3s one server at a time: install, start, wait for Ready; then kubeconfig, manifests and the database', async () => {
    const r = await up('--dry-run');
    assert.equal(r.code, 0, r.stderr);
    const k3s = r.result!.changes.filter((c) => c.phase === 'k3s');
    assert.deepEqual(
      k3s.map((c) => `${c.host} ${c.action.split(':')[0]}`),
      t.hosts.flatMap((h) => [`${h.name} install K3s v1.34.4+k3s1`, `${h.name} start k3s`, `${h.name} wait until node ${h.name} is Ready`]),
    );
    assert.match(k3s[0]!.action, /INSTALL_K3S_VERSION='v1\.34\.4\+k3s1' .* server --config \/etc\/rancher\/k3s\/config\.yaml$/);
    const later = r.result!.changes.filter((c) => ['kubeconfig', 'manifests', 'database'].includes(c.phase)).map((c) => c.phase);
    assert.deepEqual(later, ['kubeconfig', 'manifests', 'database']);
    const phases = r.result!.changes.map((c) => c.phase);
    assert.ok(phases.lastIndexOf('k3s') < phases.indexOf('kubeconfig'), 'K3s before kubeconfig');
  });

  it('names a host that is down and the step, and a second run finishes the job', async () => {
    await writeFile(configFile, yaml(', checkIntervalMs: 1500'));
    await t.stopSsh('h3');
    try {
      const r = await cli(['up', '--skip', ...K3S_PHASES]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /✗ connect \[h3\]: .*h3 \(root@10\.252\.219\.13\)/);
      assert.match(r.stderr, /is the host up and its SSH server reachable/);
    } finally {
      await t.startSsh('h3');
    }
    const again = await up('--skip', ...K3S_PHASES);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await up('--skip', ...K3S_PHASES)).result!.changes, []);
  });

  it('refuses a host whose key changed', async () => {
    const known = await readFile(t.knownHosts, 'utf8');
    const other = (await readFile(`${t.keyFile}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(
      t.knownHosts,
      known
        .split('\n')
        .map((l) => (l.startsWith('10.252.219.12 ') ? `10.252.219.12 ${other}` : l))
        .join('\n'),
    );
    try {
      const r = await cli(['up', '--dry-run', '--trust-new-host-keys']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /h2 \(10\.252\.219\.12\) presented host key SHA256:\S+, which is not the one in /);
    } finally {
      await writeFile(t.knownHosts, known);
    }
  });

  it('stops with the host and step when a command fails halfway, and a second run finishes', async () => {
    await writeFile(configFile, yaml(', checkIntervalMs: 1000'));
    // On h2, a directory sits where the new HAProxy configuration is written first: that write fails,
    // after h1 and h3 have their new file but before any HAProxy restarted.
    const blocker = t.hosts[1]!.path('/etc/haproxy/haproxy.cfg.gardenos-tmp');
    await mkdir(join(blocker, 'in-the-way'), { recursive: true });
    const r = await cli(['up', '--skip', ...K3S_PHASES]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /h2: writing \/etc\/haproxy\/haproxy\.cfg failed/);
    await rm(blocker, { recursive: true, force: true });
    // The second run writes h2's file and owes every host the restart the first run did not get to.
    const again = await up('--skip', ...K3S_PHASES);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.result!.changes.map((c) => `${c.host} ${c.action}`).sort(), [
      'h1 restart haproxy (configuration changed)',
      'h2 restart haproxy (configuration changed)',
      'h2 update /etc/haproxy/haproxy.cfg (644)',
      'h3 restart haproxy (configuration changed)',
    ]);
    assert.deepEqual((await up('--skip', ...K3S_PHASES)).result!.changes, []);
  });

  it('reaches hosts through a bastion (h1) when the config names one', async () => {
    // h2 and h3 behind h1: ssh.bastion on those two nodes.
    const lines = yaml(', checkIntervalMs: 1000')
      .split('\n')
      .map((l, i, all) =>
        l.includes('ssh: {') && !all[i - 2]?.includes('name: h1') ? l.replace(' }', `, bastion: { host: ${t.hosts[0]!.address}, keyPath: ${t.keyFile} } }`) : l,
      );
    await writeFile(configFile, lines.join('\n'));
    try {
      const r = await up('--dry-run', '--skip', ...K3S_PHASES);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.result!.changes, []);
      await t.stopSsh('h1');
      try {
        const down = await cli(['up', '--dry-run', '--skip', ...K3S_PHASES]);
        assert.equal(down.code, 1);
        assert.match(down.stderr, /h2's bastion 10\.252\.219\.11/);
        assert.match(down.stderr, /h3's bastion 10\.252\.219\.11/);
      } finally {
        await t.startSsh('h1');
      }
    } finally {
      await writeFile(configFile, yaml(', checkIntervalMs: 1000'));
    }
  });

  it("kubeconfig and manifests phases against a real Kubernetes API server on h1, storing its state in the hosts' etcd with the platform's K3s certificate", async () => {
    // K3s cannot be downloaded here; Kubernetes' own API server (built from its Go modules) runs on h1 as
    // K3s's would — in h1's network namespace, on the 3-member etcd `up` made, with the etcd-client-k3s
    // certificate `gardenos pki` issued — and K3s's admin kubeconfig is where K3s writes it.
    const pki = join(t.dir, '.gardenos', 'secrets', 'pki');
    const h1 = t.hosts[0]!;
    const cp = await startControlPlane({
      host: h1.address,
      netns: h1.namespace,
      etcd: {
        endpoints: t.hosts.map((h) => `https://${h.address}:2379`),
        ca: { cert: await readFile(join(pki, 'ca.crt'), 'utf8'), key: await readFile(join(pki, 'ca.key'), 'utf8') },
      },
      datastore: { cert: join(pki, 'etcd-client-k3s.crt'), key: join(pki, 'etcd-client-k3s.key') },
    });
    try {
      // As K3s writes it: YAML, everything named "default", the server on 127.0.0.1.
      const admin = JSON.parse(await readFile(cp.adminKubeconfigFile, 'utf8')) as { clusters: { cluster: { server: string } }[]; users: { user: unknown }[] };
      const k3sYaml = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'default', cluster: { ...admin.clusters[0]!.cluster, server: 'https://127.0.0.1:6443' } }],
        users: [{ name: 'default', user: admin.users[0]!.user }],
        contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
        'current-context': 'default',
      };
      await writeFile(h1.path('/etc/rancher/k3s/k3s.yaml'), stringify(k3sYaml), { mode: 0o600 });
      // Only h1 runs an API server: wait until every HAProxy has marked the other two down.
      await waitFor(
        'HAProxy to route the Kubernetes API to h1 only',
        async () => {
          const st = JSON.parse((await runCli(['status', '-c', configFile, '--json'])).stdout) as {
            haproxy: { servers: { proxy: string; server: string; status: string }[] }[];
          };
          return st.haproxy.every(
            (h) =>
              h.servers
                .filter((x) => x.proxy === 'kube-api' && x.status.startsWith('UP'))
                .map((x) => x.server)
                .join() === 'h1',
          );
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );

      const kubeconfig = join(t.dir, 'kubeconfig');
      const r = await up('--skip', 'k3s', 'database', '--no-wait');
      assert.equal(r.code, 0, r.stderr);
      const manifests = r.result!.changes.find((c) => c.phase === 'manifests')!;
      assert.match(manifests.action, /^apply \d+ objects server-side \(field manager gardenos\) through 10\.252\.219\.11:7443/);
      const text = await readFile(kubeconfig, 'utf8');
      assert.match(text, /server: https:\/\/10\.252\.219\.11:7443/);
      assert.match(text, /current-context: it-up/);
      assert.equal((await stat(kubeconfig)).mode & 0o777, 0o600);

      // Through that kubeconfig (HAProxy → the API server): everything `up` rendered is there, as applied.
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const core = kc.makeApiClient(CoreV1Api);
      const namespaces = (await core.listNamespace()).items.map((n) => n.metadata!.name!);
      for (const ns of ['database', 'supabase', 'apps', 'gardenos-system']) assert.ok(namespaces.includes(ns), namespaces.join(', '));
      const sts = await kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ name: 'gardenos', namespace: 'database' });
      assert.equal(sts.metadata?.managedFields?.find((m) => m.manager === 'gardenos')?.operation, 'Apply');
      // And the API server keeps them in the hosts' etcd, under K3s's prefix.
      const etcd = new EtcdClient(
        t.hosts.map((h) => `https://${h.address}:2379`),
        { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
        { timeoutMs: 3000 },
      );
      try {
        assert.ok(Object.keys((await etcd.readPrefix('/registry/statefulsets/database/')).kvs).includes('/registry/statefulsets/database/gardenos'));
      } finally {
        etcd.close();
      }

      // `gardenos kubeconfig` writes the same file on its own.
      const out = join(t.dir, 'kubeconfig-again');
      const again = await cli(['kubeconfig', '--out', out]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await readFile(out, 'utf8'), text);
    } finally {
      await cp.stop();
    }
  });

  it('reset asks first, then backs up etcd, stops everything and removes the files', async () => {
    const refused = await cli(['reset']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to reset h1, h2, h3 without confirmation/);
    const r = await cli(['reset', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { backups } = JSON.parse(r.stdout) as { backups: string[] };
    const snapshot = backups.find((b) => /etcd-.*\.db$/.test(b))!;
    assert.ok((await stat(snapshot)).size > 0, 'the etcd snapshot has data');
    for (const h of t.hosts) {
      await assert.rejects(access(h.path('/etc/gardenos/etcd/etcd.yml')));
      await assert.rejects(access(h.path('/var/lib/etcd/member')));
    }
  });
});
