// Supabase's apikey rule as gateway-auth applies it for Traefik's forwardAuth: Kong's key-auth with
// key_names [apikey] (header or query) and an ACL that admits both keys, and Kong's answers.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { apikeyVerdict, requestKey, serveApikeyCheck } from '../../src/gateway/apikey.ts';

const keys = { anonKey: 'anon.jwt.value', serviceRoleKey: 'service.jwt.value' };

describe('gateway-auth', () => {
  it('admits the anon and the service-role key, from the header or the original query', () => {
    assert.deepEqual(apikeyVerdict({ apikey: keys.anonKey }, keys), { status: 200 });
    assert.deepEqual(apikeyVerdict({ apikey: keys.serviceRoleKey }, keys), { status: 200 });
    assert.deepEqual(apikeyVerdict({ 'x-forwarded-uri': `/rest/v1/notes?select=*&apikey=${keys.anonKey}` }, keys), { status: 200 });
    assert.equal(requestKey({ apikey: 'h', 'x-forwarded-uri': '/x?apikey=q' }), 'h', 'the header wins, as in Kong');
  });

  it('during a key rotation admits the previous keys too, and only while they are given', () => {
    const rotating = { ...keys, previous: { anonKey: 'old.anon', serviceRoleKey: 'old.service' } };
    assert.deepEqual(apikeyVerdict({ apikey: 'old.service' }, rotating), { status: 200 });
    assert.deepEqual(apikeyVerdict({ apikey: 'old.service' }, keys), { status: 401, message: 'Invalid authentication credentials' });
  });

  it("refuses no key and a wrong key with Kong's messages", () => {
    assert.deepEqual(apikeyVerdict({}, keys), { status: 401, message: 'No API key found in request' });
    assert.deepEqual(apikeyVerdict({ 'x-forwarded-uri': '/rest/v1/notes?apikey=' }, keys), { status: 401, message: 'No API key found in request' });
    assert.deepEqual(apikeyVerdict({ apikey: 'anon.jwt.valuX' }, keys), { status: 401, message: 'Invalid authentication credentials' });
    assert.deepEqual(
      apikeyVerdict({ apikey: `${keys.anonKey}x` }, keys),
      { status: 401, message: 'Invalid authentication credentials' },
      'a longer key is not a prefix match',
    );
  });

  it('answers over HTTP as forwardAuth expects: 200 with no body, 401 with JSON', async () => {
    const server = await serveApikeyCheck(keys, { host: '127.0.0.1', port: 0 });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      assert.equal((await fetch(`${base}/`, { headers: { apikey: keys.anonKey } })).status, 200);
      const refused = await fetch(`${base}/`, { headers: { 'x-forwarded-uri': '/auth/v1/user' } });
      assert.equal(refused.status, 401);
      assert.deepEqual(await refused.json(), { message: 'No API key found in request' });
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
    } finally {
      server.close();
    }
  });
});
