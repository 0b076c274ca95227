// The start-up causes catalogue on the log lines the daemons really print
// (copied from this machine's etcd 3.4, Patroni 4.0, PostgreSQL 15 and HAProxy 2.6).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  debianPackageOfPythonModule,
  errorLines,
  findCauses,
  groupCauses,
  linesSince,
  logLineTime,
  sinceLastStart,
  START_MARKER,
} from '../../src/doctor/causes.ts';
import { parsePatroniVersion } from '../../src/local/preflight.ts';

const only = (process: string, line: string) => {
  const found = findCauses(process, [line]);
  assert.equal(found.length, 1, `one cause in: ${line} (got ${found.map((f) => f.id).join(', ') || 'none'})`);
  return found[0]!;
};

describe('start-up causes from the logs', () => {
  it('a missing Python module, with its Debian package', () => {
    const c = only(
      'patroni-node1',
      `2026-11-29 21:49:10,392 ERROR: Failed to get list of machines from https://127.0.0.12:2379/v2: ModuleNotFoundError("No module named 'idna'")`,
    );
    assert.equal(c.id, 'python-module');
    assert.equal(c.fatal, true);
    assert.match(c.summary, /the Python module idna is missing/);
    assert.match(c.fix, /apt-get install -y python3-idna/);
    assert.equal(debianPackageOfPythonModule('psycopg2.extensions'), 'python3-psycopg2');
    assert.equal(debianPackageOfPythonModule('Some_Thing'), 'python3-some-thing');
  });

  it("a file closed to the service's user (etcd 3.5 under systemd, as the systemd hosts' test saw it)", () => {
    const c = only(
      'gardenos-etcd@h2',
      '{"level":"warn","ts":"2026-11-30T22:48:11.919189Z","caller":"etcdmain/etcd.go:75","msg":"failed to verify flags","error":"open /etc/gardenos/etcd/etcd.yml: permission denied"}',
    );
    assert.equal(c.id, 'file-unreadable');
    assert.equal(c.fatal, true);
    assert.match(c.summary, /^cannot read \/etc\/gardenos\/etcd\/etcd\.yml: permission denied/);
    // PostgreSQL's own wording is another rule's (its TLS files) or none: not this one.
    assert.deepEqual(
      findCauses('patroni-node1', ['2026-11-30 10:00:00 UTC [1] LOG:  could not open file "postmaster.pid": Permission denied']).map((x) => x.id),
      [],
    );
  });

  it('a data directory PostgreSQL refuses, with the chmod', () => {
    const c = only('patroni-node2', '2026-11-29 22:10:01.123 UTC [4242] FATAL:  data directory "/var/lib/gardenos/x/pg/node2/data" has invalid permissions');
    assert.equal(c.id, 'pgdata-permissions');
    assert.match(c.fix, /^chmod 0700 \/var\/lib\/gardenos\/x\/pg\/node2\/data /);
  });

  it('an address in use, in the words of PostgreSQL, etcd and HAProxy', () => {
    const pg = only('patroni-node1', '2026-11-29 22:10:01.123 UTC [4242] LOG:  could not bind IPv4 address "127.0.0.11": Address already in use');
    assert.equal(pg.id, 'port-in-use');
    assert.match(pg.summary, /^cannot bind 127\.0\.0\.11: the address is already in use/);
    const etcd = only(
      'etcd-node2',
      '{"level":"fatal","ts":"2026-11-29T22:10:01.000Z","caller":"etcdmain/etcd.go:204","msg":"discovery failed","error":"listen tcp 127.0.0.12:2380: bind: address already in use"}',
    );
    assert.deepEqual(etcd.address, { host: '127.0.0.12', port: 2380 });
    const hap = only('haproxy', '[ALERT]    (1234) : Starting proxy postgres-primary: cannot bind socket (Address already in use) [127.0.0.10:5000]');
    assert.deepEqual(hap.address, { host: '127.0.0.10', port: 5000 });
  });

  it('etcd refusing a client certificate, from either side', () => {
    const etcd = only(
      'etcd-node1',
      '{"level":"warn","ts":"2026-11-29T22:10:01.000Z","caller":"embed/config_logging.go:169","msg":"rejected connection","remote-addr":"127.0.0.1:50000","server-name":"","error":"tls: failed to verify certificate: x509: certificate signed by unknown authority"}',
    );
    assert.deepEqual([etcd.id, etcd.fatal], ['etcd-rejected-client', false]); // about a client: etcd itself is fine
    assert.match(etcd.summary, /^rejects a TLS client at 127\.0\.0\.1:50000: tls: failed to verify certificate/);
    const patroni = only(
      'patroni-node3',
      "2026-11-29 22:10:01,000 ERROR: Failed to get list of machines from https://127.0.0.11:2379/v3beta: MaxRetryError(\"HTTPSConnectionPool(host='127.0.0.11', port=2379): Max retries exceeded (Caused by SSLError(SSLError(1, '[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)')))\")",
    );
    assert.equal(patroni.id, 'etcd-refuses-client-cert');
    assert.equal(patroni.fatal, true);
  });

  it('keeps what a starting cluster shows briefly apart from what will not heal', () => {
    const [c] = findCauses('patroni-node3', ['2026-11-29 22:10:01,000 INFO: waiting for leader to bootstrap']);
    assert.equal(c!.fatal, false);
    assert.deepEqual(findCauses('patroni-node3', ['2026-11-29 22:10:01,000 INFO: no action. I am (node3), a secondary, and following a leader (node1)']), []);
  });

  it('groups one cause seen by several members, and shows unknown error lines verbatim', () => {
    const line = `2026-11-29 21:49:10,392 ERROR: Failed to get list of machines from https://127.0.0.12:2379/v2: ModuleNotFoundError("No module named 'idna'")`;
    const groups = groupCauses([...findCauses('patroni-node1', [line]), ...findCauses('patroni-node2', [line])]);
    assert.deepEqual(
      groups.map((g) => g.processes),
      [['patroni-node1', 'patroni-node2']],
    );
    assert.deepEqual(errorLines(['2026-11-29 22:10:01,000 INFO: ok', '2026-11-29 22:10:02,000 ERROR: something new']), [
      '2026-11-29 22:10:02,000 ERROR: something new',
    ]);
  });

  it('reads the log since the last start, and since a moment', () => {
    const lines = [
      'old ERROR',
      `${START_MARKER}patroni-node1 at 2026-11-29T22:00:00.000Z ---`,
      '2026-11-29 22:00:01,000 ERROR: a',
      '  continuation',
      '2026-11-29 22:00:09,000 ERROR: b',
    ];
    assert.deepEqual(sinceLastStart(lines), lines.slice(2));
    assert.equal(logLineTime(lines[1]!), Date.parse('2026-11-29T22:00:00.000Z'));
    assert.deepEqual(linesSince(lines, Date.parse('2026-11-29T22:00:01Z')), lines.slice(2));
    assert.deepEqual(linesSince(lines, Date.parse('2026-11-29T22:00:05Z')), lines.slice(4));
    // Within one second: a line at ,996 is after a start at .500 (startup-causes lost a cause to this once).
    const late = ['2026-11-29 22:00:09,996 INFO: Failed to import patroni.dcs.etcd3', 'Traceback (most recent call last):'];
    assert.deepEqual(linesSince(late, Date.parse('2026-11-29T22:00:09.500')), late);
    assert.equal(logLineTime('2026-11-29 22:00:09.12 UTC [7] LOG:  x'), Date.parse('2026-11-29T22:00:09.120Z'));
  });

  it('parses patroni --version', () => {
    assert.deepEqual(parsePatroniVersion('patroni 4.0.7\n'), [4, 0, 7]);
    assert.deepEqual(parsePatroniVersion('patroni 3.0.2'), [3, 0, 2]);
    assert.equal(parsePatroniVersion('nothing'), undefined);
  });
});
