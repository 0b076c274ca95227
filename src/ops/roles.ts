// Login roles GardenOS makes for its own components (postgres-exporter's pg_monitor role): created or
// brought in line idempotently, the password sent as a SCRAM-SHA-256 verifier (RFC 5802/7677, the
// format PostgreSQL stores) so that the plain text never appears in a statement PostgreSQL could log.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type pg from 'pg';

const ITERATIONS = 4096; // PostgreSQL's scram_iterations default

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as `CREATE ROLE … PASSWORD` accepts it. */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = ITERATIONS): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * The role exists, can log in with `password`, and is a member of `memberOf` (predefined roles such as
 * pg_monitor) — nothing more: no superuser, no CREATEDB, no CREATEROLE, five connections at most.
 * Run on the primary as a superuser. Returns whether the role was created.
 */
export async function ensureLoginRole(client: pg.Client, name: string, password: string, memberOf: string[]): Promise<boolean> {
  const ident = client.escapeIdentifier(name);
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  const verifier = client.escapeLiteral(scramVerifier(password));
  await client.query(
    `${exists ? 'ALTER' : 'CREATE'} ROLE ${ident} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 5 PASSWORD ${verifier}`,
  );
  for (const r of memberOf) await client.query(`GRANT ${client.escapeIdentifier(r)} TO ${ident}`);
  return !exists;
}

/**
 * The same role as {@link ensureLoginRole}, as a psql script for a member reached only through
 * `kubectl exec` (the platform): idempotent, run as the superuser with
 * `psql -v verifier=SCRAM-SHA-256$…` — the password's verifier, never the password.
 */
export function loginRoleSql(name: string, memberOf: string[]): string {
  const ident = `"${name.replaceAll('"', '""')}"`;
  const literal = `'${name.replaceAll("'", "''")}'`;
  return [
    '\\set ON_ERROR_STOP 1',
    `SELECT 'CREATE ROLE ${ident.replaceAll("'", "''")}' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal})`,
    '\\gexec',
    `ALTER ROLE ${ident} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 5 PASSWORD :'verifier';`,
    ...memberOf.map((r) => `GRANT "${r.replaceAll('"', '""')}" TO ${ident};`),
    '',
  ].join('\n');
}
