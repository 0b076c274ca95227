// `gardenos up` against hosts that really boot systemd (test/helpers/systemd-hosts.ts: three
// systemd-nspawn containers from a minimal Debian 12 root, 10.252.220.11–13): the rendered units run
// as written under systemd — etcd's Type=notify unit as the etcd user with its data directory owned
// right, Restart=always bringing a killed etcd back, its log in the journal — HAProxy through
// Debian's unit and GardenOS's drop-in, one host reached as a user with sudo, Debian's own
// etcd.service (a plain-HTTP etcd on localhost, enabled by its package) stopped and masked, a host
// rebooted that rejoins, a host powered off for good named by `up` and `status` while quorum holds,
// and `reset` leaving the hosts as it found them. Needs root (namespaces, containers), as CI runs.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../src/clients/etcd.ts';
import type { UpResult } from '../../src/remote/up.ts';
import { waitFor } from '../../src/util/wait.ts';
import { runCli, type CliResult } from '../helpers/local.ts';
import { startSystemdHosts, type SystemdHosts } from '../helpers/systemd-hosts.ts';

const asRoot = process.getuid?.() === 0;
const OCTET = 220;

describe('gardenos up on hosts that boot systemd', {
  timeout: 900_000,
  skip: asRoot ? false : 'needs root for network namespaces and systemd-nspawn containers (see README)',
}, () => {
  let t: SystemdHosts;
  let configFile: string;
  const cli = (args: string[]): Promise<CliResult> => runCli([...args, '-c', configFile, '--known-hosts', t.knownHosts]);
  const up = async (...args: string[]) => {
    const r = await cli(['up', '--json', ...args]);
    return { ...r, result: r.code === 0 ? (JSON.parse(r.stdout) as UpResult) : undefined };
  };
  const etcd = (hosts: string[]) => {
    const pki = join(t.dir, '.gardenos', 'secrets', 'pki');
    return new EtcdClient(
      hosts.map((n) => `https://${t.hosts.find((h) => h.name === n)!.address}:2379`),
      { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
      { timeoutMs: 3000 },
    );
  };
  /** Every listed member answers over mutual TLS, and exactly one of them leads. */
  const etcdHealthy = (hosts: string[], what: string) =>
    waitFor(
      `etcd healthy on ${hosts.join(', ')} (${what})`,
      async () => {
        const c = etcd(hosts);
        try {
          const statuses = await c.statuses();
          if (!statuses.every((s) => s.ok) || statuses.filter((s) => s.isLeader).length !== 1) throw new Error(JSON.stringify(statuses));
          return statuses;
        } finally {
          c.close();
        }
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );

  before(async () => {
    t = await startSystemdHosts('sd', OCTET, { sudoHost: 'h1' });
    configFile = join(t.dir, 'gardenos.yaml');
    await writeFile(
      configFile,
      `cluster: { name: it-sd }
nodes:
${t.hosts.map((h) => `  - name: ${h.name}\n    address: { public: ${h.address}, private: ${h.address} }\n    ssh: { user: ${h.user}, keyPath: ${t.keyFile} }\n    roles: [etcd, haproxy]`).join('\n')}
haproxy: { address: ${t.hosts[0]!.address} }
`,
    );
  });
  after(async () => {
    await t?.cleanup();
  });

  it('forms etcd and starts HAProxy through the rendered units under systemd, h1 through sudo; Debian’s own etcd.service is stopped and masked', async () => {
    // What an administrator's `apt-get install etcd-server` leaves: Debian's unit enabled, a plain-HTTP etcd on localhost.
    assert.equal((await t.exec('h2', 'systemctl is-enabled etcd.service || true')).trim(), 'enabled');
    const r = await up('--trust-new-host-keys');
    assert.equal(r.code, 0, `${r.stderr}\n${await t.console('h1')}`);
    assert.deepEqual(
      r.result!.hosts.map((h) => [h.name, h.services]),
      t.hosts.map((h) => [h.name, 'systemd']),
    );
    // h1 as the user with sudo, the others as root.
    const connected = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step?: string; member?: string; status?: string; detail?: string })
      .filter((e) => e.step === 'connect' && e.member && e.status === 'done')
      .map((e) => `${e.member} ${e.detail?.split('@')[0]}`)
      .sort();
    assert.deepEqual(connected, ['h1 deploy', 'h2 root', 'h3 root']);
    await etcdHealthy(['h1', 'h2', 'h3'], 'after up');
    for (const h of t.hosts) {
      const state = (
        await t.exec(
          h.name,
          [
            'for p in ActiveState SubState Type NRestarts; do printf "%s " "$(systemctl show -p $p --value gardenos-etcd)"; done; echo',
            'ps -o user= -p "$(systemctl show -p MainPID --value gardenos-etcd)"',
            'stat -c "%U:%G %a" /var/lib/etcd',
            `stat -c "%U:%G %a" /etc/gardenos/pki/etcd-${h.name}.key`,
            'systemctl is-enabled gardenos-etcd',
            'systemctl is-active haproxy',
            'systemctl show -p DropInPaths --value haproxy',
            'systemctl is-enabled etcd.service || true',
            'systemctl is-active etcd.service || true',
            '(ss -ltnH | grep -c "127.0.0.1:2379") || true',
          ].join('; '),
        )
      )
        .trim()
        .split('\n');
      assert.deepEqual(
        state,
        [
          'active running notify 0 ',
          'etcd',
          'etcd:etcd 700',
          'etcd:etcd 600',
          'enabled',
          'active',
          '/etc/systemd/system/haproxy.service.d/gardenos.conf',
          'masked',
          'inactive',
          '0',
        ],
        `${h.name}: etcd as the etcd user under its Type=notify unit, data 0700 etcd:etcd, its key readable by it only; HAProxy with the drop-in; Debian's etcd.service masked and nothing on 127.0.0.1:2379`,
      );
      // HAProxy serves its stats port with the password from GardenOS's 0600 environment file.
      assert.match(await t.exec(h.name, `curl -s -o /dev/null -w '%{http_code}' http://${h.address}:8404/stats`), /^401$/);
    }
    // The journal has etcd's own log.
    assert.match(await t.exec('h2', 'journalctl -u gardenos-etcd --no-pager -o cat | tail -n 200'), /"msg":"serving client traffic securely"/);
  });

  it('changes nothing when run again', async () => {
    const r = await up();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result!.changes, []);
  });

  it('Restart=always: systemd brings back an etcd that was killed, and it rejoins', async () => {
    const before = Number((await t.exec('h2', 'systemctl show -p MainPID --value gardenos-etcd')).trim());
    assert.ok(before > 0);
    await t.exec('h2', `kill -9 ${before}`);
    await waitFor(
      'systemd to restart gardenos-etcd on h2',
      async () => {
        const [pid, restarts, state] = (await t.exec('h2', 'for p in MainPID NRestarts ActiveState; do systemctl show -p $p --value gardenos-etcd; done'))
          .trim()
          .split('\n');
        if (Number(pid) > 0 && Number(pid) !== before && Number(restarts) >= 1 && state === 'active') return true;
        throw new Error(`MainPID ${pid}, NRestarts ${restarts}, ${state}`);
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    await etcdHealthy(['h1', 'h2', 'h3'], 'after the restart');
  });

  it('a rebooted host comes back with its member rejoining and HAProxy serving; up then has nothing to do', async () => {
    const c = etcd(['h1', 'h2']);
    await c.put('/it-sd/before-reboot', 'kept');
    c.close();
    await t.powerOff('h3');
    await t.boot('h3');
    assert.equal((await t.exec('h3', 'systemctl is-system-running --wait || true')).trim(), 'running', await t.console('h3'));
    await etcdHealthy(['h1', 'h2', 'h3'], 'after h3 rebooted');
    const c3 = etcd(['h3']);
    assert.equal(await c3.get('/it-sd/before-reboot'), 'kept');
    c3.close();
    assert.equal((await t.exec('h3', 'systemctl is-active haproxy')).trim(), 'active');
    const r = await up();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result!.changes, []);
  });

  it('a host powered off for good: up and status name it, and quorum holds on the other two', async () => {
    await t.powerOff('h3');
    const r = await up();
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /h3/);
    const s = await runCli(['status', '--json', '-c', configFile]);
    assert.equal(s.code, 2, s.stderr);
    const status = JSON.parse(s.stdout) as { problems: string[]; etcd: { name: string; healthy: boolean }[] };
    assert.ok(
      status.problems.some((p) => /h3/.test(p)),
      status.problems.join('; '),
    );
    assert.deepEqual(
      status.etcd.map((e) => [e.name, e.healthy]),
      [
        ['h1', true],
        ['h2', true],
        ['h3', false],
      ],
    );
    // Quorum: two of three still take writes.
    const c = etcd(['h1', 'h2']);
    await c.put('/it-sd/after-power-off', 'written');
    assert.equal(await c.get('/it-sd/after-power-off'), 'written');
    c.close();
    await t.boot('h3');
    await etcdHealthy(['h1', 'h2', 'h3'], 'h3 back');
  });

  it("doctor reads systemd's view on each host: an etcd that cannot read its configuration is named with the journal's line, and up puts it right", async () => {
    type Finding = { id: string; status: string; summary: string; evidence: string[]; fix?: string };
    const hostUnits = async () => {
      const r = await runCli(['doctor', '--json', '-c', configFile, '--known-hosts', t.knownHosts]);
      return (JSON.parse(r.stdout) as { findings: Finding[] }).findings.find((f) => f.id === 'host-units')!;
    };
    assert.notEqual((await hostUnits()).status, 'fail', 'healthy hosts to begin with');
    // What an older GardenOS left on hosts: /etc/gardenos 0700, so etcd (as the etcd user) cannot open its configuration.
    // (Stopped first: a running etcd also trips over it, reading its certificate for a new connection.)
    await t.exec('h2', 'systemctl stop gardenos-etcd && chmod 700 /etc/gardenos && systemctl start --no-block gardenos-etcd');
    const found = await waitFor(
      "doctor to name h2's etcd and the journal's reason",
      async () => {
        const f = await hostUnits();
        if (f.status === 'fail' && /h2 gardenos-etcd/.test(f.summary) && f.evidence.some((e) => /permission denied/.test(e))) return f;
        throw new Error(JSON.stringify(f));
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    assert.match(found.summary, /cannot read \/etc\/gardenos\/\S+: permission denied/);
    assert.match(found.fix ?? '', /gardenos up/);
    const r = await up();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.result!.changes.some((c) => c.host === 'h2' && /^make \/etc\/gardenos 0755/.test(c.action)),
      JSON.stringify(r.result!.changes),
    );
    await etcdHealthy(['h1', 'h2', 'h3'], 'after up opened /etc/gardenos again');
    assert.notEqual((await hostUnits()).status, 'fail');
  });

  it('reset leaves each host as it found it: units disabled and removed, data removed after the snapshot; Debian’s etcd.service unmasked; the host boots clean', async () => {
    const r = await cli(['reset', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { backups } = JSON.parse(r.stdout) as { backups: string[] };
    assert.ok(
      backups.some((b) => /etcd-.*\.db$/.test(b)),
      `an etcd snapshot was taken first: ${backups.join(', ')}`,
    );
    for (const h of t.hosts) {
      // HAProxy's configuration is the package's again (up kept it aside before replacing it).
      assert.equal((await t.exec(h.name, 'grep -c GardenOS /etc/haproxy/haproxy.cfg || true')).trim(), '0');
      assert.equal((await t.exec(h.name, 'grep -c "^global" /etc/haproxy/haproxy.cfg')).trim(), '1');
      const left = (
        await t.exec(
          h.name,
          'ls /etc/systemd/system/gardenos-etcd.service /etc/systemd/system/haproxy.service.d/gardenos.conf /var/lib/etcd/member /etc/gardenos 2>/dev/null | wc -l; systemctl is-active gardenos-etcd || true; systemctl is-enabled etcd.service || true',
        )
      )
        .trim()
        .split('\n');
      assert.deepEqual(left, ['0', 'inactive', 'enabled'], `${h.name}: nothing of GardenOS left, Debian's unit as it was`);
    }
    await t.powerOff('h2');
    await t.boot('h2');
    assert.equal((await t.exec('h2', 'systemctl is-system-running --wait || true')).trim(), 'running', await t.console('h2'));
    assert.equal((await t.exec('h2', 'systemctl is-active gardenos-etcd || true')).trim(), 'inactive');
  });
});
