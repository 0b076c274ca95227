// Cross-field rules, checked after defaults are applied (k0sctl's Validate(),
// Patroni's validator): things no single field's schema can know.
import type { Config } from './schema.ts';

export interface RuleIssue {
  path: (string | number)[];
  message: string;
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Whether two IPv4 CIDR blocks overlap; IPv6 blocks are not compared. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [ia, ba] = a.split('/');
  const [ib, bb] = b.split('/');
  const na = ipv4ToInt(ia ?? '');
  const nb = ipv4ToInt(ib ?? '');
  if (na === undefined || nb === undefined) return false;
  const bits = Math.min(Number(ba), Number(bb));
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (na & mask) === (nb & mask);
}

function duplicates<T>(items: readonly T[], key: (t: T) => string): { index: number; value: string }[] {
  const seen = new Set<string>();
  const out: { index: number; value: string }[] = [];
  items.forEach((item, index) => {
    const value = key(item);
    if (seen.has(value)) out.push({ index, value });
    seen.add(value);
  });
  return out;
}

export function checkRules(c: Config): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const pg = c.postgres;
  if (pg.loopWait + 2 * pg.retryTimeout > pg.ttl) {
    issues.push({
      path: ['postgres', 'ttl'],
      message: `Patroni needs loopWait + 2*retryTimeout <= ttl, but ${pg.loopWait} + 2*${pg.retryTimeout} = ${pg.loopWait + 2 * pg.retryTimeout} > ${pg.ttl}; raise ttl or lower loopWait/retryTimeout`,
    });
  }

  for (const d of duplicates(c.nodes, (n) => n.name)) {
    issues.push({ path: ['nodes', d.index, 'name'], message: `node name "${d.value}" is used by an earlier node; names must be unique` });
  }
  for (const kind of ['private', 'public'] as const) {
    for (const d of duplicates(c.nodes, (n) => n.address[kind])) {
      issues.push({ path: ['nodes', d.index, 'address', kind], message: `address ${d.value} is used by an earlier node; each node needs its own ${kind} address` });
    }
  }
  if (c.nodes.length > 0) {
    const etcdMembers = c.nodes.filter((n) => n.roles.includes('etcd')).length;
    if (etcdMembers % 2 === 0) {
      issues.push({
        path: ['nodes'],
        message: `etcd needs an odd number of members for a quorum that survives a failure (1, 3 or 5); ${etcdMembers} nodes have the etcd role`,
      });
    }
  }

  if (cidrsOverlap(c.k3s.clusterCidr, c.k3s.serviceCidr)) {
    issues.push({ path: ['k3s', 'serviceCidr'], message: `overlaps k3s.clusterCidr ${c.k3s.clusterCidr}; pod and service networks must be disjoint` });
  }

  for (const d of duplicates(c.apps, (a) => a.name)) {
    issues.push({ path: ['apps', d.index, 'name'], message: `app name "${d.value}" is used by an earlier app` });
  }
  const ingressHosts = new Set(c.ingress.hosts.map((h) => h.name));
  c.apps.forEach((app, ai) => {
    app.routes.forEach((r, ri) => {
      if (!ingressHosts.has(r.host)) {
        const known = [...ingressHosts].join(', ') || 'none';
        issues.push({ path: ['apps', ai, 'routes', ri, 'host'], message: `host "${r.host}" is not one of ingress.hosts (${known}); add it there first` });
      }
    });
  });

  if (c.supabase.storage.backend === 's3' && !c.supabase.storage.s3) {
    issues.push({ path: ['supabase', 'storage', 's3'], message: 'backend "s3" needs an s3 section with bucket and region' });
  }
  if (c.local.firstHost + c.local.members - 1 > 254) {
    issues.push({ path: ['local', 'firstHost'], message: `members would need addresses up to .${c.local.firstHost + c.local.members - 1}; keep firstHost <= ${255 - c.local.members}` });
  }
  return issues;
}
