// Fixed inputs for renderer tests: the shipped example, fixed secrets and paths,
// so output is byte-for-byte repeatable.
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { ClusterSecrets, EtcdFiles, HaproxyFiles, PatroniFiles } from '../../src/render/files.ts';

export function exampleConfig(): Config {
  return parseConfig(readFileSync(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8'));
}

export const SECRETS: ClusterSecrets = {
  superuserPassword: 'superuser-pw',
  replicationPassword: 'replication-pw',
  rewindPassword: 'rewind-pw',
  restApiPassword: 'restapi-pw',
  statsPassword: 'stats-pw',
  etcdClusterToken: 'gardenos-0123456789abcdef',
};

export function etcdFiles(root: string, member: string): EtcdFiles {
  return {
    dataDir: `${root}/etcd/${member}`,
    tls: { ca: `${root}/pki/ca.crt`, cert: `${root}/pki/etcd-${member}.crt`, key: `${root}/pki/etcd-${member}.key` },
  };
}

export function patroniFiles(root: string, member: string): PatroniFiles {
  return {
    dataDir: `${root}/pg/${member}/data`,
    binDir: '/usr/lib/postgresql/15/bin',
    socketDir: `${root}/pg/${member}/run`,
    pgpass: `${root}/pg/${member}/pgpass`,
    tls: { ca: `${root}/pki/ca.crt`, cert: `${root}/pki/pg-${member}.crt`, key: `${root}/pki/pg-${member}.key` },
  };
}

export function haproxyFiles(root: string): HaproxyFiles {
  return { adminSocket: `${root}/haproxy/admin.sock`, ca: `${root}/pki/ca.crt` };
}
