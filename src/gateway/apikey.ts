// Supabase's gateway rule, for Traefik's forwardAuth: a request to a keyed path passes only with the
// anon or the service-role key, in the `apikey` header or query parameter — what Kong's key-auth
// (key_names: apikey) and ACL (anon, admin) do in Supabase's own gateway, with Kong's answers.
// Runs beside Traefik in its pod (`gardenos gateway-auth`), on loopback, so no DNS and no extra hop.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface ApiKeys {
  anonKey: string;
  serviceRoleKey: string;
  /** During a rotation: the keys being retired, accepted until `pki --retire supabase`. */
  previous?: { anonKey: string; serviceRoleKey: string };
}

export interface Verdict {
  status: 200 | 401;
  /** Kong's own bodies, which Supabase's clients know. */
  message?: string;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** The key of a request as Traefik forwards it: the `apikey` header, else `apikey` in the original URI's query. */
export function requestKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers.apikey;
  if (typeof header === 'string' && header) return header;
  const uri = headers['x-forwarded-uri'];
  if (typeof uri !== 'string') return undefined;
  const query = uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '';
  return new URLSearchParams(query).get('apikey') || undefined;
}

export function apikeyVerdict(headers: IncomingHttpHeaders, keys: ApiKeys): Verdict {
  const key = requestKey(headers);
  if (!key) return { status: 401, message: 'No API key found in request' };
  const accepted = [keys.anonKey, keys.serviceRoleKey, ...(keys.previous ? [keys.previous.anonKey, keys.previous.serviceRoleKey] : [])];
  if (accepted.some((k) => same(key, k))) return { status: 200 };
  return { status: 401, message: 'Invalid authentication credentials' };
}

/** The forwardAuth endpoint (any path) and /healthz. */
export function serveApikeyCheck(keys: ApiKeys, listen: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const v = apikeyVerdict(req.headers, keys);
    if (v.status === 200) {
      res.writeHead(200).end();
      return;
    }
    res.writeHead(v.status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ message: v.message }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
