import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseConfig, validateConfig } from '../../src/config/load.ts';
import { maskSecrets, MASK } from '../../src/config/mask.ts';
import { cidrsOverlap } from '../../src/config/rules.ts';
import { GardenError } from '../../src/errors.ts';
import { jsonSchema } from '../../src/cli/config.ts';

function problemsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, 'g.yaml');
  } catch (e) {
    assert.ok(e instanceof GardenError, `expected a GardenError, got ${e}`);
    assert.equal(e.code, 'CONFIG_INVALID');
    return [...e.details];
  }
  assert.fail('config was accepted');
}

const node = (name: string, priv: string) => `  - name: ${name}\n    address: { public: 192.0.2.${priv.split('.').pop()}, private: ${priv} }\n`;

describe('config', () => {
  it('applies defaults to the smallest file', () => {
    const c = parseConfig('cluster: { name: tiny }\n');
    assert.equal(c.postgres.ttl, 30);
    assert.equal(c.postgres.synchronousMode, true);
    assert.equal(c.etcd.clientPort, 2379);
    assert.deepEqual(c.k3s.disable, ['traefik', 'servicelb']);
    assert.equal(c.local.addressPrefix, '127.0.0');
  });

  it('accepts the shipped example: the journal platform on documentation addresses', async () => {
    const text = await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8');
    const c = parseConfig(text, 'examples/gardenos.yaml');
    assert.equal(c.nodes.length, 3);
    assert.deepEqual(
      c.apps.map((a) => a.name),
      ['main-api', 'ai-agents'],
    );
    for (const n of c.nodes) {
      assert.match(n.address.public, /^192\.0\.2\./);
      assert.match(n.address.private, /^198\.51\.100\./);
    }
  });

  it('names the field, line and column of a bad value', () => {
    const problems = problemsOf('cluster:\n  name: Bad_Name\n');
    assert.deepEqual(problems, [
      'g.yaml:2:9: cluster.name: must be lower-case letters, digits and "-", starting and ending with a letter or digit (got "Bad_Name")',
    ]);
  });

  it('rejects unknown keys and lists the allowed ones', () => {
    const [p] = problemsOf('cluster: { name: a }\npostgres:\n  tll: 30\n');
    assert.match(p!, /^g\.yaml:3:3: postgres\.tll: unknown key; allowed here: version, scope, namespace, port, patroniPort, ttl,/);
  });

  it('reports every problem at once, with wrong types in plain words', () => {
    const problems = problemsOf('cluster: { name: a }\npostgres:\n  synchronousMode: maybe\nnodes: {}\n');
    assert.equal(problems.length, 2);
    assert.ok(
      problems.some((p) => p === 'g.yaml:3:20: postgres.synchronousMode: must be a boolean (got "maybe")'),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith('g.yaml:4:8: nodes: must be a list')),
      problems.join('\n'),
    );
  });

  it("checks Patroni's loop_wait + 2*retry_timeout <= ttl", () => {
    const [p] = problemsOf('cluster: { name: a }\npostgres:\n  ttl: 20\n  loopWait: 10\n  retryTimeout: 10\n');
    assert.match(p!, /^g\.yaml:3:8: postgres\.ttl: Patroni needs loopWait \+ 2\*retryTimeout <= ttl, but 10 \+ 2\*10 = 30 > 20/);
  });

  it('knows the floors the Patroni it runs enforces (ttl >= 20, retry_timeout >= 3), at the field', () => {
    const problems = problemsOf('cluster: { name: a }\npostgres:\n  ttl: 10\n  loopWait: 2\n  retryTimeout: 2\n');
    assert.ok(problems.includes('g.yaml:3:8: postgres.ttl: Patroni (>= 3.2) enforces ttl >= 20 seconds (got 10)'), problems.join('\n'));
    assert.ok(problems.includes('g.yaml:5:17: postgres.retryTimeout: Patroni (>= 3.2) enforces retry_timeout >= 3 seconds (got 2)'), problems.join('\n'));
    assert.equal(parseConfig('cluster: { name: a }\npostgres:\n  ttl: 20\n  loopWait: 2\n  retryTimeout: 5\n').postgres.ttl, 20);
  });

  it('rejects duplicate node names and addresses, and an even etcd member count', () => {
    const problems = problemsOf(`cluster: { name: a }\nnodes:\n${node('n1', '198.51.100.1')}${node('n1', '198.51.100.1')}`);
    assert.ok(
      problems.some((p) => /nodes\[1\]\.name: node name "n1" is used by an earlier node/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /nodes\[1\]\.address\.private: address 198\.51\.100\.1 is used by an earlier node/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /nodes: etcd needs an odd number of members .* 2 nodes have the etcd role/.test(p)),
      problems.join('\n'),
    );
  });

  it('rejects a bad CIDR, overlapping networks, a missing app image and a route to an unknown host', () => {
    assert.match(problemsOf('cluster: { name: a }\nk3s: { clusterCidr: 10.42.0.0/33 }\n')[0]!, /k3s\.clusterCidr: must be a CIDR block/);
    assert.match(
      problemsOf('cluster: { name: a }\nk3s: { clusterCidr: 10.0.0.0/8, serviceCidr: 10.43.0.0/16 }\n')[0]!,
      /k3s\.serviceCidr: overlaps k3s\.clusterCidr/,
    );
    assert.match(problemsOf('cluster: { name: a }\napps:\n  - name: api\n')[0]!, /g\.yaml:3:5: apps\[0\]\.image: is required/);
    const [route] = problemsOf(
      'cluster: { name: a }\napps:\n  - name: api\n    image: x/api:1\n    readyPath: /ready\n    routes: [{ host: nowhere.example.com }]\n',
    );
    assert.match(route!, /apps\[0\]\.routes\[0\]\.host: host "nowhere\.example\.com" is not one of ingress\.hosts \(none\)/);
  });

  it('refuses routes that cannot work: a host two routes claim, a path that never matches, an app behind the ingress without readiness, TLS that cannot be had', () => {
    const base = 'cluster: { name: a }\nsupabase: { enabled: true }\n';
    const claimed = problemsOf(
      `${base}ingress: { hosts: [{ name: h.example.com }] }\napps:\n  - { name: one, image: x/a:1, readyPath: /ready, routes: [{ host: h.example.com, path: /api }] }\n  - { name: two, image: x/b:1, readyPath: /ready, routes: [{ host: h.example.com, path: /api/ }, { host: h.example.com, path: /rest/v1 }] }\n`,
    );
    assert.deepEqual(
      claimed.map((p) => p.replace(/^g\.yaml:\d+:\d+: /, '')),
      [
        'apps[1].routes[0].path: h.example.com/api/ is already routed to app "one"; each host and path goes to one place',
        "apps[1].routes[1].path: h.example.com/rest/v1 is already routed to Supabase's gateway (/rest/v1 on the first ingress host); each host and path goes to one place",
      ],
    );
    const never = problemsOf(
      `cluster: { name: a }\ningress: { hosts: [{ name: h.example.com }] }\napps:\n  - { name: one, image: x/a:1, readyPath: /ready, routes: [{ host: h.example.com, path: /api/* }] }\n`,
    );
    assert.match(never[0]!, /apps\[0\]\.routes\[0\]\.path: "\/api\/\*" never matches a request: "\*" is compared literally/);
    const unready = problemsOf(
      `cluster: { name: a }\ningress: { hosts: [{ name: h.example.com }] }\napps:\n  - { name: one, image: x/a:1, routes: [{ host: h.example.com }] }\n`,
    );
    assert.match(unready[0]!, /^g\.yaml:4:5: apps\[0\]\.readyPath: app "one" is behind the ingress but has no readyPath/);
    const tls = problemsOf(
      'cluster: { name: a }\ningress:\n  hosts:\n    - { name: a.example.com, tls: acme }\n    - { name: b.example.com, tls: secret }\n    - { name: c.example.com, tls: internal, tlsSecret: c-cert }\n    - { name: 10.0.0.5 }\n    - { name: a.example.com }\n',
    );
    assert.deepEqual(tls.map((p) => p.replace(/^g\.yaml:\d+:\d+: /, '')).sort(), [
      'ingress.acme: host "a.example.com" has tls: acme, which needs ingress.acme.email (the ACME account\'s address)',
      'ingress.hosts[1].tlsSecret: tls: secret needs tlsSecret, the name of a kubernetes.io/tls Secret you manage',
      'ingress.hosts[2].tls: tlsSecret is used only with tls: secret, but tls is internal; remove one of them',
      'ingress.hosts[3].name: "10.0.0.5" is an address; an Ingress routes by DNS name (Kubernetes refuses addresses as hosts)',
      'ingress.hosts[4].name: host "a.example.com" is listed twice; list each host once',
    ]);
    assert.match(problemsOf('cluster: { name: a }\nk3s: { disable: [servicelb] }\n')[0]!, /k3s\.disable: GardenOS installs its own Traefik/);
  });

  it('refuses what used to get through to a crash: an address that is no address, two things on one port', () => {
    assert.match(
      problemsOf('cluster: { name: a }\nnodes:\n  - { name: n1, address: { public: 300.1.2.3, private: 10.0.0.1 } }\n')[0]!,
      /nodes\[0\]\.address\.public: must be an IPv4 or IPv6 address or a host name \(got "300\.1\.2\.3"\)/,
    );
    assert.deepEqual(problemsOf('cluster: { name: a }\npostgres: { port: 2379, patroniPort: 5000 }\n'), [
      "g.yaml:2:19: postgres.port: port 2379 is already etcd.clientPort's; every port GardenOS binds on a node must differ",
      "g.yaml:2:38: postgres.patroniPort: port 5000 is already haproxy.ports.primary's; every port GardenOS binds on a node must differ",
    ]);
  });

  it('reports an alias without its anchor at its position, and refuses an alias bomb (found by the property test)', () => {
    assert.deepEqual(problemsOf('cluster: { name: a }\npostgres: *nothing\n'), [
      'g.yaml:2:11: YAML: Unresolved alias (the anchor must be set before the alias): nothing',
    ]);
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...'bcdefghij'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefghij'[i]}`).join(', ')}]`),
      'cluster: { name: a }',
    ].join('\n');
    assert.match(problemsOf(bomb)[0]!, /YAML: Excessive alias count/);
  });

  it('reports YAML syntax errors with their position', () => {
    const [p] = problemsOf('cluster:\n  name: [unclosed\n');
    assert.match(p!, /^g\.yaml:\d+:\d+: YAML syntax: /);
  });

  it('validates plain data without positions', () => {
    const { problems } = validateConfig({ cluster: { name: 'x' }, postgres: { port: 70000 } });
    assert.equal(problems[0]?.path, 'postgres.port');
    assert.equal(problems[0]?.line, undefined);
  });

  it('masks values that look like secrets in config show', () => {
    const c = parseConfig(
      'cluster: { name: a }\ningress: { hosts: [{ name: h.example.com }] }\napps:\n  - name: api\n    image: x/api:1\n    env: { LOG_LEVEL: info, STRIPE_API_KEY: sk_live_123, DB_PASSWORD: hunter2 }\n',
    );
    const masked = maskSecrets(c);
    assert.deepEqual(masked.apps[0]!.env, { LOG_LEVEL: 'info', STRIPE_API_KEY: MASK, DB_PASSWORD: MASK });
    assert.equal(c.apps[0]!.env.DB_PASSWORD, 'hunter2', 'the original is untouched');
  });

  it('exports a JSON Schema an editor can use', () => {
    const schema = jsonSchema() as { properties: Record<string, unknown>; required?: string[]; additionalProperties?: boolean };
    assert.ok(schema.properties.postgres && schema.properties.nodes && schema.properties.apps);
    assert.deepEqual(schema.required, ['cluster']);
    assert.equal(schema.additionalProperties, false);
  });

  it('compares IPv4 CIDR blocks', () => {
    assert.equal(cidrsOverlap('10.42.0.0/16', '10.43.0.0/16'), false);
    assert.equal(cidrsOverlap('10.0.0.0/8', '10.43.0.0/16'), true);
  });
});

describe('the local cluster record', () => {
  it('a record written before monitoring existed gets its defaults, instead of crashing status', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { resolveConfig } = await import('../../src/local/cluster.ts');
    const dir = await mkdtemp(join(tmpdir(), 'gardenos-record-'));
    try {
      const { monitoring: _absent, ...old } = parseConfig('cluster: { name: old }\n');
      await writeFile(join(dir, 'cluster.json'), JSON.stringify({ name: 'old', createdAt: '2026-01-01T00:00:00.000Z', config: old }));
      const config = await resolveConfig({ stateDir: dir });
      assert.equal(config.cluster.name, 'old');
      assert.equal(config.monitoring.enabled, false);
      assert.equal(config.monitoring.port, 9090);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
