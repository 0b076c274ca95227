// `gardenos pki|render|plan` proven with the real programs: the rendered etcd
// configurations and certificates form a real 3-member etcd cluster with
// mutual TLS (127.0.218.11–13); HAProxy accepts its rendered configuration;
// Supabase's bootstrap SQL runs twice on a real PostgreSQL; plan shows an edit.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseAllDocuments } from 'yaml';
import { EtcdClient } from '../../src/clients/etcd.ts';
import { waitFor } from '../../src/util/wait.ts';
import { runCli } from '../helpers/local.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
const asRoot = process.getuid?.() === 0;
const PREFIX = '127.0.218';

const CONFIG = `cluster: { name: it-platform }
nodes:
${[1, 2, 3].map((i) => `  - name: n${i}\n    address: { public: ${PREFIX}.${20 + i}, private: ${PREFIX}.${10 + i} }`).join('\n')}
etcd: { dataDir: /var/lib/etcd }
haproxy: { address: ${PREFIX}.11 }
ingress: { hosts: [{ name: api.example.test }] }
apps:
  - name: api
    image: registry.example.test/api:1.0.0
    replicas: 2
    readyPath: /ready
    routes: [{ host: api.example.test, path: / }]
`;

describe('gardenos render, proven with the real etcd, HAProxy and PostgreSQL', { timeout: 300_000 }, () => {
  let dir: string;
  let out: string;
  const etcds: ChildProcess[] = [];
  const cli = (...args: string[]) => runCli([...args, '-c', join(dir, 'gardenos.yaml')]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-platform-'));
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'gardenos.yaml'), CONFIG);
    out = join(dir, 'rendered');
  });
  after(async () => {
    for (const p of etcds) p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('renders byte-identical output twice, and plan then reports no changes', async () => {
    const first = await cli('render', '--out', out, '--with-secrets', '--host-root', join(out, 'hosts', '{node}'), '--json');
    assert.equal(first.code, 0, first.stderr);
    const snapshot = async () =>
      Object.fromEntries(
        await Promise.all((JSON.parse(first.stdout) as { files: string[] }).files.map(async (f) => [f, await readFile(join(out, f), 'utf8')])),
      );
    const a = await snapshot();
    const second = await cli('render', '--out', out, '--with-secrets', '--host-root', join(out, 'hosts', '{node}'), '--json');
    assert.equal(second.code, 0, second.stderr);
    assert.equal((JSON.parse(second.stdout) as { written: number }).written, 0, 'nothing rewritten');
    assert.deepEqual(await snapshot(), a);
    const plan = await cli('plan', '--out', out, '--with-secrets', '--host-root', join(out, 'hosts', '{node}'));
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^no changes/);
  });

  it('plan shows what an edit changes, with a diff, and keeps secrets out of it', async () => {
    await writeFile(join(dir, 'gardenos.yaml'), CONFIG.replace('replicas: 2', 'replicas: 3'));
    try {
      const r = await cli('plan', '--out', out, '--with-secrets', '--host-root', join(out, 'hosts', '{node}'), '--json');
      const { changes } = JSON.parse(r.stdout) as { changes: { path: string; change: string; diff?: string }[] };
      assert.deepEqual(
        changes.map((c) => [c.path, c.change]),
        [['kubernetes/50-apps.yaml', 'changed']],
      );
      assert.match(changes[0]!.diff!, /^- {2}replicas: 2$/m);
      assert.match(changes[0]!.diff!, /^\+ {2}replicas: 3$/m);
      const human = await cli('plan', '--out', out, '--with-secrets', '--host-root', join(out, 'hosts', '{node}'));
      assert.match(human.stdout, /^~ kubernetes\/50-apps\.yaml$/m);
      assert.match(human.stdout, /0 to add, 1 to change, 0 to remove/);
    } finally {
      await writeFile(join(dir, 'gardenos.yaml'), CONFIG);
    }
  });

  it('refuses an --out that is a file and a config that is a directory, with a clear error and nothing written', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'gardenos-badinput-'));
    try {
      await writeFile(join(scratch, 'gardenos.yaml'), CONFIG);
      await writeFile(join(scratch, 'a-file'), 'x');
      const r = await runCli(['render', '-c', join(scratch, 'gardenos.yaml'), '--out', join(scratch, 'a-file')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /--out .*a-file is a file; render writes a tree of files into a directory/);
      assert.doesNotMatch(r.stderr, /bug in GardenOS/);
      const dir = await runCli(['config', 'check', '-c', scratch]);
      assert.match(dir.stderr, /config file .* is a directory/);
      assert.doesNotMatch(dir.stderr, /bug in GardenOS/);
      assert.deepEqual((await readdir(scratch)).sort(), ['a-file', 'gardenos.yaml'], 'no secrets, certificates or render were written');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("rotates Supabase's keys with `pki --rotate supabase`, and retires the previous ones only when confirmed", async () => {
    const rotate = await cli('pki', '--rotate', 'supabase', '--json');
    assert.equal(rotate.code, 0, rotate.stderr);
    assert.match((JSON.parse(rotate.stdout) as { supabase: { rotatedAt: string } }).supabase.rotatedAt, /^\d{4}-\d\d-\d\dT/);
    const again = await cli('pki', '--rotate', 'supabase');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not finished/);
    const unconfirmed = await cli('pki', '--retire', 'supabase');
    assert.equal(unconfirmed.code, 1);
    assert.match(unconfirmed.stderr, /refusing to retire Supabase's previous keys without confirmation/);
    const retired = await cli('pki', '--retire', 'supabase', '--yes', '--json');
    assert.equal(retired.code, 0, retired.stderr);
    assert.match((JSON.parse(retired.stdout) as { supabase: { retiredBackup: string } }).supabase.retiredBackup, /secrets\.json\..*\.bak$/);
    const nothing = await cli('pki', '--retire', 'supabase', '--yes');
    assert.match(nothing.stderr, /no rotation of Supabase's keys is in progress/);
    for (const r of [rotate, again, unconfirmed, retired, nothing]) assert.doesNotMatch(r.stdout + r.stderr, /eyJ/, 'no key is ever printed');
  });

  it('HAProxy accepts every host configuration it renders (haproxy -c)', async () => {
    for (const n of ['n1', 'n2', 'n3']) {
      const cfg = join(out, 'hosts', n, 'etc/haproxy/haproxy.cfg');
      const env = Object.fromEntries(
        (await readFile(join(out, 'hosts', n, 'etc/gardenos/haproxy.env'), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => l.split('=', 2) as [string, string]),
      );
      const r = await run('haproxy', ['-c', '-f', cfg], { env: { ...process.env, ...env } });
      assert.match(r.stdout + r.stderr, /Configuration file is valid/);
    }
  });

  it('starts a real 3-member etcd cluster with mutual TLS from the rendered files', async () => {
    for (const n of ['n1', 'n2', 'n3']) {
      const root = join(out, 'hosts', n);
      await mkdir(join(root, 'var/lib/etcd'), { recursive: true, mode: 0o700 });
      const p = spawn('etcd', ['--config-file', join(root, 'etc/gardenos/etcd/etcd.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
      p.stderr!.resume();
      etcds.push(p);
    }
    const secrets = join(dir, '.gardenos', 'secrets', 'pki');
    const endpoints = [1, 2, 3].map((i) => `https://${PREFIX}.${10 + i}:2379`);
    const client = new EtcdClient(
      endpoints,
      { ca: join(secrets, 'ca.crt'), cert: join(secrets, 'etcd-client-gardenos.crt'), key: join(secrets, 'etcd-client-gardenos.key') },
      { timeoutMs: 3000 },
    );
    try {
      const statuses = await waitFor(
        'three healthy members with a leader',
        async () => {
          const s = await client.statuses();
          return s.every((x) => x.ok) && s.some((x) => x.isLeader) ? s : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      assert.equal(statuses.length, 3);
      await client.put('/it-platform/hello', 'world');
      assert.equal(await client.get('/it-platform/hello'), 'world');
    } finally {
      client.close();
    }
    // Trusting the CA but without a client certificate: the TLS handshake is refused.
    const ca = await readFile(join(secrets, 'ca.crt'));
    const noCert = await new Promise<string>((resolve) => {
      const req = httpsRequest(`${endpoints[0]}/v3/kv/range`, { method: 'POST', ca, timeout: 3000 }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(JSON.stringify({ key: Buffer.from('/it-platform/hello').toString('base64') }));
    });
    assert.doesNotMatch(noCert, /^HTTP/, `a client without a certificate got ${noCert}`);
    // Plain HTTP on the client port: no answer with data.
    const plain = await new Promise<string>((resolve) => {
      const req = request(`http://${PREFIX}.11:2379/version`, { timeout: 3000 }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    assert.notEqual(plain, 'HTTP 200', 'etcd answered plain HTTP');
  });

  it('Patroni accepts the configuration the StatefulSet mounts, with the pod environment, against that etcd (patroni --validate-config)', async () => {
    const secrets = parseAllDocuments(await readFile(join(out, 'kubernetes/05-secrets.yaml'), 'utf8')).map(
      (d) => d.toJS() as { metadata: { name: string }; data: Record<string, string> },
    );
    const yml = Buffer.from(secrets.find((s) => s.metadata.name === 'postgres-patroni')!.data['patroni.yml']!, 'base64').toString();
    const file = join(dir, 'patroni.yml');
    await writeFile(file, yml, { mode: 0o600 });
    // As the pod runs it: its name and addresses from the environment the StatefulSet sets (hostNetwork: the node's address).
    const env = {
      ...process.env,
      PATRONI_NAME: 'it-platform-0',
      PATRONI_RESTAPI_LISTEN: `${PREFIX}.11:8008`,
      PATRONI_RESTAPI_CONNECT_ADDRESS: `${PREFIX}.11:8008`,
      PATRONI_POSTGRESQL_LISTEN: `${PREFIX}.11:5432`,
      PATRONI_POSTGRESQL_CONNECT_ADDRESS: `${PREFIX}.11:5432`,
    };
    // Exits non-zero, listing each failed field, when anything does not pass.
    const r = await run('patroni', ['--validate-config', file], { env });
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /didn't pass validation/, `${r.stdout}${r.stderr}`);
  });

  describe('Supabase bootstrap SQL on a real PostgreSQL', () => {
    const host = `${PREFIX}.50`;
    let dataDir: string;
    const asPostgres = (cmd: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args));
    const uri = `postgresql://postgres:bootstrap-pw@${host}:5432/postgres?sslmode=disable`;

    before(async () => {
      const base = join(dir, 'pg');
      dataDir = join(base, 'data');
      await mkdir(base, { recursive: true });
      await writeFile(join(base, 'pw'), 'bootstrap-pw\n');
      if (asRoot) {
        const [, , uid, gid] = (await readFile('/etc/passwd', 'utf8'))
          .split('\n')
          .find((l) => l.startsWith('postgres:'))!
          .split(':');
        await chown(base, Number(uid), Number(gid));
        await chown(join(base, 'pw'), Number(uid), Number(gid));
      }
      await asPostgres(`${BIN}/initdb`, ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${join(base, 'pw')}`]);
      await asPostgres(`${BIN}/pg_ctl`, ['-D', dataDir, '-l', join(base, 'log'), '-w', '-o', `-c listen_addresses=${host} -k ${base}`, 'start']);
    });
    after(async () => {
      if (dataDir) await asPostgres(`${BIN}/pg_ctl`, ['-D', dataDir, '-m', 'immediate', 'stop']).catch(() => {});
    });

    it('applies twice without error and leaves the roles, memberships, search paths and grants Supabase needs', async () => {
      const sql = join(out, 'supabase/bootstrap.sql');
      const vars = ['-v', 'authenticator_password=auth-pw', '-v', 'auth_admin_password=admin-pw', '-v', 'storage_admin_password=storage-pw'];
      for (let i = 0; i < 2; i++) {
        const r = await run('psql', ['-X', '-q', '-d', uri, ...vars, '-f', sql], { env: { ...process.env } });
        assert.doesNotMatch(r.stderr, /ERROR/, r.stderr);
      }
      const client = new pg.Client({ connectionString: uri });
      await client.connect();
      try {
        const roles = (
          await client.query<{
            rolname: string;
            rolcanlogin: boolean;
            rolinherit: boolean;
            rolbypassrls: boolean;
            rolcreaterole: boolean;
            rolconfig: string[] | null;
          }>(
            "SELECT rolname, rolcanlogin, rolinherit, rolbypassrls, rolcreaterole, rolconfig FROM pg_roles WHERE rolname IN ('anon','authenticated','service_role','authenticator','supabase_auth_admin','supabase_storage_admin') ORDER BY rolname",
          )
        ).rows;
        const by = Object.fromEntries(roles.map((r) => [r.rolname, r]));
        assert.equal(roles.length, 6);
        assert.equal(by.anon!.rolcanlogin, false);
        assert.equal(by.authenticated!.rolcanlogin, false);
        assert.equal(by.service_role!.rolbypassrls, true);
        assert.equal(by.authenticator!.rolcanlogin, true);
        assert.equal(by.authenticator!.rolinherit, false);
        assert.equal(by.supabase_auth_admin!.rolcreaterole, true);
        assert.ok(by.supabase_auth_admin!.rolconfig?.includes('search_path=auth'));
        assert.ok(by.supabase_storage_admin!.rolconfig?.includes('search_path=storage'));
        const members = (
          await client.query<{ role: string; member: string }>(
            'SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2',
          )
        ).rows.map((x) => `${x.member}→${x.role}`);
        for (const m of ['authenticator→anon', 'authenticator→authenticated', 'authenticator→service_role', 'supabase_storage_admin→authenticator'])
          assert.ok(members.includes(m), `${m} in ${members.join(', ')}`);
        const owners = (
          await client.query<{ nspname: string; owner: string }>(
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname IN ('auth', 'storage') ORDER BY 1",
          )
        ).rows;
        assert.deepEqual(owners, [
          { nspname: 'auth', owner: 'supabase_auth_admin' },
          { nspname: 'storage', owner: 'supabase_storage_admin' },
        ]);
        const usage = (
          await client.query<{ ok: boolean }>(
            "SELECT has_schema_privilege('anon', 'public', 'USAGE') AND has_schema_privilege('authenticated', 'storage', 'USAGE') AS ok",
          )
        ).rows[0]!.ok;
        assert.equal(usage, true);
        // No auth.* functions: GoTrue's migrations create them.
        assert.equal(
          (await client.query("SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'auth'")).rows[0].n,
          0,
        );
        // The passwords from the variables work.
        const login = new pg.Client({ connectionString: uri.replace('postgres:bootstrap-pw', 'authenticator:auth-pw') });
        await login.connect();
        await login.end();
      } finally {
        await client.end();
      }
    });

    // PostgREST and GoTrue cannot be obtained on these machines (PostgREST is Haskell; github.com/supabase/auth
    // is refused by the Go module proxy), so what they do in the database is done here the way they do it,
    // with a JWT signed by the generated secret: PostgREST verifies it, then per request
    // `SET LOCAL ROLE <claims.role>` and `set_config('request.jwt.claims', …, true)` as authenticator.
    it("without PostgREST or GoTrue (neither obtainable here): the request roles switch with a JWT's claims and RLS decides by auth.uid()", async () => {
      const secret = 'jwt-secret-of-at-least-32-characters!';
      const { SignJWT, jwtVerify } = await import('jose');
      const sign = (claims: Record<string, unknown>) =>
        new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('supabase').setExpirationTime('1h').sign(new TextEncoder().encode(secret));
      const alice = '11111111-1111-4111-8111-111111111111';
      const bob = '22222222-2222-4222-8222-222222222222';
      const su = new pg.Client({ connectionString: uri });
      const authAdmin = new pg.Client({ connectionString: uri.replace('postgres:bootstrap-pw', 'supabase_auth_admin:admin-pw') });
      const storageAdmin = new pg.Client({ connectionString: uri.replace('postgres:bootstrap-pw', 'supabase_storage_admin:storage-pw') });
      const rest = new pg.Client({ connectionString: uri.replace('postgres:bootstrap-pw', 'authenticator:auth-pw') });
      await Promise.all([su, authAdmin, storageAdmin, rest].map((c) => c.connect()));
      try {
        // GoTrue's migrations run as supabase_auth_admin into its schema (search_path auth): it can create auth.uid() there.
        assert.equal((await authAdmin.query<{ s: string }>("SELECT current_setting('search_path') AS s")).rows[0]!.s, 'auth');
        await authAdmin.query(
          "CREATE OR REPLACE FUNCTION uid() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('request.jwt.claims', true)::jsonb ->> 'sub', '')::uuid $$",
        );
        // storage-api's migrations run as supabase_storage_admin into storage.
        assert.equal((await storageAdmin.query<{ s: string }>("SELECT current_setting('search_path') AS s")).rows[0]!.s, 'storage');
        await storageAdmin.query('CREATE TABLE IF NOT EXISTS buckets (id text PRIMARY KEY)');
        assert.equal(
          (await su.query<{ o: string }>("SELECT tableowner AS o FROM pg_tables WHERE schemaname = 'storage' AND tablename = 'buckets'")).rows[0]!.o,
          'supabase_storage_admin',
        );
        // A user's table with row-level security on auth.uid(), created as the owner of public would.
        await su.query('DROP TABLE IF EXISTS public.notes');
        await su.query('CREATE TABLE public.notes (id serial PRIMARY KEY, owner uuid NOT NULL DEFAULT auth.uid(), body text NOT NULL)');
        await su.query('ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY');
        await su.query('CREATE POLICY own_notes ON public.notes FOR ALL TO authenticated USING (owner = auth.uid()) WITH CHECK (owner = auth.uid())');
        await su.query(`INSERT INTO public.notes (owner, body) VALUES ('${alice}', 'alice''s'), ('${bob}', 'bob''s')`);

        // One PostgREST request: verify the token, switch to its role with its claims for one transaction.
        const request = async (token: string, sql: string) => {
          const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { issuer: 'supabase', algorithms: ['HS256'] });
          await rest.query('BEGIN');
          try {
            await rest.query(`SET LOCAL ROLE ${String(payload.role)}`);
            await rest.query("SELECT set_config('request.jwt.claims', $1, true)", [JSON.stringify(payload)]);
            return (await rest.query(sql)).rows as Record<string, unknown>[];
          } finally {
            await rest.query('ROLLBACK').catch(() => {});
          }
        };
        const asAlice = await sign({ role: 'authenticated', sub: alice, aud: 'authenticated' });
        assert.deepEqual(await request(asAlice, 'SELECT body FROM public.notes ORDER BY id'), [{ body: "alice's" }], 'alice sees her rows only');
        assert.deepEqual(
          await request(asAlice, "INSERT INTO public.notes (body) VALUES ('new') RETURNING owner::text"),
          [{ owner: alice }],
          'a new row is hers by auth.uid()',
        );
        await assert.rejects(
          request(asAlice, `INSERT INTO public.notes (owner, body) VALUES ('${bob}', 'forged') RETURNING id`),
          /row-level security/,
          "she cannot write bob's rows",
        );
        assert.deepEqual(await request(await sign({ role: 'anon' }), 'SELECT body FROM public.notes'), [], 'anon: no policy, no rows');
        assert.equal(
          (await request(await sign({ role: 'service_role' }), 'SELECT count(*)::int AS n FROM public.notes'))[0]!.n,
          2,
          'service_role bypasses RLS',
        );
        // authenticator may become only the three request roles; a token claiming another is refused by PostgreSQL itself.
        await assert.rejects(request(await sign({ role: 'postgres' }), 'SELECT 1'), /permission denied to set role "postgres"/);
        // A token signed with another secret never reaches the database.
        const forged = await new SignJWT({ role: 'service_role' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('supabase')
          .sign(new TextEncoder().encode('another-secret-of-at-least-32-chars!!'));
        await assert.rejects(request(forged, 'SELECT 1'), /signature verification failed/);
      } finally {
        await su.query('DROP TABLE IF EXISTS public.notes').catch(() => {});
        await Promise.all([su, authAdmin, storageAdmin, rest].map((c) => c.end()));
      }
    });
  });
});
