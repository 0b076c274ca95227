// Cross-field rules, checked after defaults are applied (k0sctl's Validate(),
// Patroni's validator): things no single field's schema can know.
import { isIP } from 'node:net';
import { hostTls, type Config } from './schema.ts';

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
      issues.push({
        path: ['nodes', d.index, 'address', kind],
        message: `address ${d.value} is used by an earlier node; each node needs its own ${kind} address`,
      });
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

  // Every port GardenOS binds on a node (a hybrid node holds them all on its addresses): no two the same.
  const ports: [(string | number)[], number][] = [
    [['etcd', 'clientPort'], c.etcd.clientPort],
    [['etcd', 'peerPort'], c.etcd.peerPort],
    [['k3s', 'apiPort'], c.k3s.apiPort],
    [['haproxy', 'ports', 'kubeApi'], c.haproxy.ports.kubeApi],
    [['haproxy', 'ports', 'primary'], c.haproxy.ports.primary],
    [['haproxy', 'ports', 'replicas'], c.haproxy.ports.replicas],
    [['haproxy', 'ports', 'stats'], c.haproxy.ports.stats],
    [['postgres', 'port'], c.postgres.port],
    [['postgres', 'patroniPort'], c.postgres.patroniPort],
    [['router', 'port'], c.router.port],
    ...(c.pooler.enabled ? [[['pooler', 'port'], c.pooler.port] as [(string | number)[], number]] : []),
    // pgBackRest's TLS server on each PostgreSQL node (the pod is on the host network).
    ...(c.backups.enabled && c.nodes.length ? [[['backups', 'serverPort'], c.backups.serverPort] as [(string | number)[], number]] : []),
    ...(c.monitoring.enabled
      ? ([
          [['monitoring', 'port'], c.monitoring.port],
          // The local profile runs one postgres-exporter per member on consecutive ports from this one.
          ...[0, 1, 2].map((i) => [['monitoring', 'exporterPorts', 'postgres'], c.monitoring.exporterPorts.postgres + i]),
          [['monitoring', 'exporterPorts', 'node'], c.monitoring.exporterPorts.node],
          [['monitoring', 'alertmanager', 'port'], c.monitoring.alertmanager.port],
        ] as [(string | number)[], number][])
      : []),
    ...(c.ingress.controller === 'traefik'
      ? ([
          [['ingress', 'httpPort'], c.ingress.httpPort],
          [['ingress', 'httpsPort'], c.ingress.httpsPort],
        ] as [(string | number)[], number][])
      : []),
  ];
  const owner = new Map<number, string>();
  for (const [path, value] of ports) {
    const first = owner.get(value);
    if (first) issues.push({ path, message: `port ${value} is already ${first}'s; every port GardenOS binds on a node must differ` });
    else owner.set(value, path.join('.'));
  }

  if (cidrsOverlap(c.k3s.clusterCidr, c.k3s.serviceCidr)) {
    issues.push({ path: ['k3s', 'serviceCidr'], message: `overlaps k3s.clusterCidr ${c.k3s.clusterCidr}; pod and service networks must be disjoint` });
  }

  for (const d of duplicates(c.apps, (a) => a.name)) {
    issues.push({ path: ['apps', d.index, 'name'], message: `app name "${d.value}" is used by an earlier app` });
  }
  issues.push(...ingressRules(c));

  if (c.supabase.storage.backend === 's3' && !c.supabase.storage.s3) {
    issues.push({ path: ['supabase', 'storage', 's3'], message: 'backend "s3" needs an s3 section with bucket and region' });
  }
  // pgBackRest checks an S3 endpoint's certificate against DNS names only: an address would fail every request.
  const s3 = c.backups.repository.s3;
  if (s3 && isIP(s3.endpoint.replace(/:\d+$/, '')) !== 0)
    issues.push({
      path: ['backups', 'repository', 's3', 'endpoint'],
      message: `"${s3.endpoint}" is an address; pgBackRest verifies the endpoint's TLS certificate by DNS name only, so name it by a host name its certificate carries`,
    });
  // The platform's schedules are CronJobs, which count minutes: a seconds field is for the local profile's scheduler only.
  if (c.backups.enabled && c.nodes.length) {
    if (c.postgres.flavor !== 'gardenos')
      issues.push({
        path: ['backups', 'enabled'],
        message: `backups on the platform need postgres.flavor gardenos: pgBackRest runs beside each member and in the repository pod, and both must be the same pgBackRest (GardenOS's image), which ${c.postgres.flavor}'s image does not guarantee`,
      });
    for (const [kind, expr] of Object.entries(c.backups.schedule)) {
      if (typeof expr === 'string' && kind !== 'timeZone' && expr.trim().split(/\s+/).length === 6)
        issues.push({
          path: ['backups', 'schedule', kind],
          message: `"${expr}" has a seconds field; the platform's schedules are Kubernetes CronJobs, which take five fields (minute hour day-of-month month day-of-week)`,
        });
    }
  }
  if (c.local.firstHost + c.local.members - 1 > 254) {
    issues.push({
      path: ['local', 'firstHost'],
      message: `members would need addresses up to .${c.local.firstHost + c.local.members - 1}; keep firstHost <= ${255 - c.local.members}`,
    });
  }
  return issues;
}

/** The Prefix path a route is matched by, as the ingress compares it (a trailing "/" is not part of it). */
const routeKey = (host: string, path: string) => `${host}${path.length > 1 ? path.replace(/\/+$/, '') : path}`;

/** Paths Supabase's gateway takes on the first ingress host. */
export const SUPABASE_PATHS = ['/auth/v1', '/rest/v1', '/storage/v1'] as const;

function ingressRules(c: Config): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const hosts = c.ingress.hosts;
  for (const d of duplicates(hosts, (h) => h.name)) {
    issues.push({ path: ['ingress', 'hosts', d.index, 'name'], message: `host "${d.value}" is listed twice; list each host once` });
  }
  hosts.forEach((h, i) => {
    const tls = hostTls(h);
    if (tls === 'secret' && !h.tlsSecret)
      issues.push({ path: ['ingress', 'hosts', i, 'tlsSecret'], message: 'tls: secret needs tlsSecret, the name of a kubernetes.io/tls Secret you manage' });
    if (h.tlsSecret && tls !== 'secret')
      issues.push({ path: ['ingress', 'hosts', i, 'tls'], message: `tlsSecret is used only with tls: secret, but tls is ${tls}; remove one of them` });
    if (tls === 'acme' && !c.ingress.acme)
      issues.push({ path: ['ingress', 'acme'], message: `host "${h.name}" has tls: acme, which needs ingress.acme.email (the ACME account's address)` });
  });

  if (c.supabase.enabled && c.ingress.controller !== 'traefik') {
    issues.push({
      path: ['ingress', 'controller'],
      message:
        "Supabase's gateway rules (the apikey check, the open auth paths) run in the Traefik GardenOS installs; keep ingress.controller: traefik, or disable supabase",
    });
  }
  if (c.ingress.controller === 'traefik' && !c.k3s.disable.includes('traefik')) {
    issues.push({
      path: ['k3s', 'disable'],
      message:
        "GardenOS installs its own Traefik (ingress.controller: traefik), and K3s's packaged one would take the same ports; keep traefik in k3s.disable, or set ingress.controller: none",
    });
  }
  hosts.forEach((h, i) => {
    if (isIP(h.name) !== 0)
      issues.push({
        path: ['ingress', 'hosts', i, 'name'],
        message: `"${h.name}" is an address; an Ingress routes by DNS name (Kubernetes refuses addresses as hosts)`,
      });
  });
  const known = new Set(hosts.map((h) => h.name));
  // Who claims each host and path: Supabase's gateway first (it is rendered on the first host), then the apps in order.
  const claims = new Map<string, string>();
  const supabaseHost = hosts[0]?.name;
  if (c.supabase.enabled && supabaseHost)
    for (const p of SUPABASE_PATHS) claims.set(routeKey(supabaseHost, p), `Supabase's gateway (${p} on the first ingress host)`);
  c.apps.forEach((app, ai) => {
    if (app.routes.length && !app.readyPath) {
      issues.push({
        path: ['apps', ai, 'readyPath'],
        message: `app "${app.name}" is behind the ingress but has no readyPath: the ingress would send requests to pods that cannot serve yet (give the path that answers 200 only when its database does)`,
      });
    }
    app.routes.forEach((r, ri) => {
      const at = ['apps', ai, 'routes', ri];
      if (!known.has(r.host)) {
        issues.push({
          path: [...at, 'host'],
          message: `host "${r.host}" is not one of ingress.hosts (${[...known].join(', ') || 'none'}); add it there first`,
        });
      }
      // A Prefix path is compared element by element with the request's path, which never holds these.
      const never = /[*?#]|\/\//.exec(r.path);
      if (never) {
        issues.push({
          path: [...at, 'path'],
          message: `"${r.path}" never matches a request: "${never[0]}" is compared literally (paths are prefixes, such as /api, not patterns)`,
        });
      }
      const key = routeKey(r.host, r.path);
      const owner = claims.get(key);
      if (owner) issues.push({ path: [...at, 'path'], message: `${r.host}${r.path} is already routed to ${owner}; each host and path goes to one place` });
      else claims.set(key, `app "${app.name}"`);
    });
  });
  return issues;
}
