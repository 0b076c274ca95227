// biome-ignore-all lint/suspicious/noExplicitAny: rendered YAML read back, asserted on at any depth
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { localTopology } from '../../src/local/profile.ts';
import { renderEtcdConfig } from '../../src/render/etcd.ts';
import { renderHaproxyConfig } from '../../src/render/haproxy.ts';
import { renderPatroniConfig } from '../../src/render/patroni.ts';
import { productionTopology } from '../../src/render/topology.ts';
import { etcdFiles, exampleConfig, haproxyFiles, patroniFiles, SECRETS } from '../helpers/fixtures.ts';

const config = exampleConfig();
const prod = productionTopology(config);
const local = localTopology(config);
const member = prod.etcd[0]!;

function renderAll(topology = prod) {
  return {
    etcd: renderEtcdConfig({ config, topology, member: topology.etcd[0]!, files: etcdFiles('/srv', topology.etcd[0]!.name), secrets: SECRETS }),
    patroni: renderPatroniConfig({
      config,
      topology,
      member: topology.postgres[0]!,
      files: patroniFiles('/srv', topology.postgres[0]!.name),
      secrets: SECRETS,
    }),
    haproxy: renderHaproxyConfig({ config, topology, files: haproxyFiles('/srv'), secrets: SECRETS }),
  };
}

describe('renderers', () => {
  it('produce byte-identical output for the same input', () => {
    assert.deepEqual(renderAll(), renderAll());
  });

  it('match the reviewed snapshot', (t) => {
    t.assert.snapshot(renderAll());
  });

  it('etcd: v3 only, mutual TLS on client and peer ports, no plain-HTTP listener', () => {
    const text = renderAll().etcd;
    assert.doesNotMatch(text, /http:\/\//, 'no plain-HTTP URL anywhere');
    const e = parse(text) as Record<string, unknown>;
    assert.equal(e['enable-v2'], false);
    assert.equal(e['listen-client-urls'], `https://${member.address}:2379`);
    assert.equal(e['initial-cluster'], prod.etcd.map((m) => `${m.name}=https://${m.address}:2380`).join(','));
    assert.equal(e['initial-cluster-token'], SECRETS.etcdClusterToken);
    for (const key of ['client-transport-security', 'peer-transport-security']) {
      const sec = e[key] as Record<string, unknown>;
      assert.equal(sec['client-cert-auth'], true, key);
      assert.ok(sec['trusted-ca-file'] && sec['cert-file'] && sec['key-file'], key);
    }
  });

  it('patroni: etcd3 over TLS, synchronous mode, checksums, pg_rewind, scram and no trust', () => {
    const p = parse(renderAll().patroni) as any;
    assert.equal(p.etcd, undefined, 'never the v2 `etcd:` section');
    assert.equal(p.etcd3.protocol, 'https');
    assert.ok(p.etcd3.cacert && p.etcd3.cert && p.etcd3.key);
    assert.deepEqual(
      p.etcd3.hosts,
      prod.etcd.map((m) => `${m.address}:2379`),
    );
    assert.equal(p.bootstrap.dcs.synchronous_mode, true);
    assert.equal(p.bootstrap.dcs.ttl, 30);
    assert.equal(p.bootstrap.dcs.postgresql.use_pg_rewind, true);
    assert.ok(p.bootstrap.initdb.includes('data-checksums'));
    assert.equal(p.bootstrap.dcs.postgresql.parameters.password_encryption, 'scram-sha-256');
    assert.equal(p.bootstrap.dcs.postgresql.parameters.max_connections, 200, "the user's parameters are kept");
    assert.equal(p.postgresql.parameters.ssl, 'on');
    assert.ok(p.restapi.certfile && p.restapi.authentication.password);
    const hba: string[] = p.postgresql.pg_hba;
    assert.ok(
      hba.every((l) => !/\btrust\b|\bmd5\b/.test(l)),
      hba.join('\n'),
    );
    assert.ok(hba.includes(`hostssl all all ${config.k3s.clusterCidr} scram-sha-256`), 'the pod network may connect');
    assert.ok(hba.includes(`hostssl replication replicator ${prod.postgres[1]!.address}/32 scram-sha-256`));
  });

  it('haproxy: Patroni checks over TLS, the K3s API only where there are K3s servers', () => {
    const prodCfg = renderAll().haproxy;
    assert.match(prodCfg, /listen postgres-primary\n.*\n {4}option httpchk OPTIONS \/primary\n {4}http-check expect status 200/);
    assert.match(prodCfg, /option httpchk OPTIONS \/replica\?lag=16777216/);
    assert.match(prodCfg, /server garden-1 198\.51\.100\.11:5432 maxconn 200 check port 8008 check-ssl verify required ca-file \/srv\/pki\/ca\.crt/);
    assert.match(prodCfg, /listen kube-api\n {4}bind 198\.51\.100\.11:7443/);
    assert.match(prodCfg, /stats auth admin:stats-pw/);
    assert.match(prodCfg, /on-marked-down shutdown-sessions/);
    const localCfg = renderAll(local).haproxy;
    assert.doesNotMatch(localCfg, /kube-api/);
    assert.match(localCfg, /bind 127\.0\.0\.10:5000/);
  });

  it('the local profile changes only addresses: same settings, loopback members', () => {
    const a = parse(renderAll().patroni) as any;
    const b = parse(renderAll(local).patroni) as any;
    assert.equal(b.postgresql.listen, '127.0.0.11:5432');
    assert.deepEqual(b.bootstrap.dcs, a.bootstrap.dcs);
    assert.deepEqual(b.bootstrap.initdb, a.bootstrap.initdb);
    assert.deepEqual(b.tags, a.tags);
    assert.equal(b.etcd3.protocol, a.etcd3.protocol);
  });
});
