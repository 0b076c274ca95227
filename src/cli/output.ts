// Terminal output helpers: aligned tables, errors with their hint, and the
// status report. Results go to stdout; progress and errors to stderr.
import { GardenError, describe } from '../errors.ts';
import type { DoctorReport } from '../doctor/run.ts';
import type { LocalStatus } from '../local/status.ts';
import type { PlatformStatus } from '../platform/status.ts';

/** A report: JSON (pretty) with --json, else the human text; always on stdout. */
export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function formatError(e: unknown): string {
  if (e instanceof GardenError) {
    return [`error: ${e.message}`, ...e.details.map((d) => `  ${d}`), ...(e.hint ? [`hint: ${e.hint}`] : [])].join('\n');
  }
  return `error: ${describe(e)}\n(this is a bug in GardenOS; please report it with the command you ran)`;
}

const etcdTable = (rows: LocalStatus['etcd']) =>
  table(
    ['ETCD', 'ENDPOINT', 'HEALTH', 'LEADER', 'DB SIZE', 'VERSION'],
    rows.map((e) => [e.name, e.endpoint, e.healthy ? 'healthy' : 'unreachable', e.leader ? '*' : '', bytes(e.dbSizeBytes), e.version ?? '-']),
  );

const membersTable = (rows: LocalStatus['members']) =>
  table(
    ['MEMBER', 'HOST', 'ROLE', 'STATE', 'TL', 'LAG'],
    rows.map((m) => [m.name, m.host, m.role, m.state, m.timeline === null ? '-' : String(m.timeline), bytes(m.lagBytes)]),
  );

function kubernetesSection(k: NonNullable<LocalStatus['kubernetes']>): string[] {
  if (!k.reachable) return [`K3S      unreachable: ${k.error ?? ''}`];
  return [
    table(
      ['NODE', 'STATUS', 'ROLES', 'VERSION', 'ADDRESS', 'TAINTS'],
      k.nodes.map((n) => [
        n.name,
        n.ready ? 'Ready' : 'NotReady',
        n.roles.join(',') || '<none>',
        n.version,
        n.addresses.join(', ') || '-',
        n.taints.join(', ') || '<none>',
      ]),
    ),
    '',
    table(
      ['NAMESPACE', 'WORKLOAD', 'READY'],
      k.workloads.map((w) => [w.namespace, `${w.kind.toLowerCase()}/${w.name}`, `${w.ready}/${w.desired}`]),
    ),
  ];
}

const problemsSection = (problems: string[]) => (problems.length ? ['', 'problems:', ...problems.map((p) => `  - ${p}`)] : []);

export function formatStatus(s: LocalStatus): string {
  const out: string[] = [
    `cluster ${s.cluster} (scope ${s.scope}) — ${s.healthy ? 'healthy' : 'DEGRADED'}`,
    '',
    etcdTable(s.etcd),
    '',
    membersTable(s.members),
    '',
  ];
  if (s.haproxy.reachable) {
    out.push(
      table(
        ['HAPROXY', 'SERVER', 'STATUS', 'CHECK'],
        s.haproxy.servers.map((v) => [v.proxy, v.server, v.status, v.checkStatus]),
      ),
    );
  } else {
    out.push(`HAPROXY  unreachable: ${s.haproxy.error ?? ''}`);
  }
  out.push('');
  out.push(
    s.router.reachable
      ? `ROUTER   primary → ${s.router.primary ?? 'nobody'}; replicas → ${s.router.replicas.join(', ') || 'none'}${s.router.lastChangeAt ? ` (last change ${s.router.lastChangeAt})` : ''}`
      : `ROUTER   unreachable: ${s.router.error ?? ''}`,
  );
  if (s.pooler) {
    const p = s.pooler;
    out.push(
      '',
      p.reachable
        ? `POOLER   ${p.paused ? 'PAUSED' : 'serving'}; ${p.databases.map((d) => `${d.name} → ${d.host}:${d.port} (${d.currentConnections} server connections)`).join(', ') || 'no open pools (every database is idle)'}`
        : `POOLER   unreachable: ${p.error ?? ''}`,
    );
  }
  if (s.backups) out.push('', backupsLine(s.backups));
  if (s.kubernetes) out.push('', ...kubernetesSection(s.kubernetes));
  out.push(...problemsSection(s.problems));
  return out.join('\n');
}

const ago = (seconds: number) =>
  seconds < 120
    ? `${seconds} s`
    : seconds < 7200
      ? `${Math.round(seconds / 60)} min`
      : seconds < 172_800
        ? `${Math.round(seconds / 3600)} h`
        : `${Math.round(seconds / 86_400)} d`;

function backupsLine(b: NonNullable<LocalStatus['backups']>): string {
  if (!b.readable) return `BACKUPS  repository unreadable: ${b.error ?? ''}`;
  const newest = b.newest ? `newest ${b.newest.label} (${b.newest.type}, ${ago(b.newest.ageSeconds)} ago)` : 'no backup yet';
  const verified = b.lastVerified
    ? `last restore test ${b.lastVerified.label} at ${b.lastVerified.verifiedAt}`
    : 'never restore-tested (gardenos local db backup verify)';
  const archiving = b.archiver?.failing ? `WAL ARCHIVING FAILING at ${b.archiver.lastFailedWal}` : `WAL archived to ${b.walArchivedUpTo ?? '-'}`;
  const next = b.scheduler.running
    ? b.scheduler.next
      ? `next: ${b.scheduler.next.kind} at ${b.scheduler.next.at}`
      : 'nothing scheduled'
    : 'SCHEDULER NOT RUNNING';
  return `BACKUPS  ${newest}; ${archiving}; ${verified}; ${next}`;
}

export function formatPlatformStatus(s: PlatformStatus): string {
  const out: string[] = [`platform ${s.cluster} — ${s.healthy ? 'healthy' : 'DEGRADED'}`, '', etcdTable(s.etcd), '', membersTable(s.members), ''];
  out.push(
    table(
      ['HAPROXY', 'BACKEND', 'SERVER', 'STATUS', 'CHECK'],
      s.haproxy.flatMap((h) =>
        h.reachable ? h.servers.map((v) => [h.node, v.proxy, v.server, v.status, v.checkStatus]) : [[h.node, '-', '-', 'unreachable', h.error ?? '']],
      ),
    ),
  );
  if (s.kubernetes) {
    out.push('', ...kubernetesSection(s.kubernetes));
    if (s.kubernetes.reachable)
      out.push('', `ROUTER   postgres-primary → ${s.kubernetes.primaryEndpoint === null ? 'missing' : s.kubernetes.primaryEndpoint?.join(', ') || 'nobody'}`);
  }
  const b = s.backups;
  if (b) {
    const v = b.lastVerify;
    out.push(
      '',
      b.reachable
        ? `BACKUPS  newest ${b.newest ? `${b.newest.label} (${b.newest.type}, ${b.newest.ageHours.toFixed(1)} h old)` : 'none yet'}; WAL archived to ${b.archivedTo ?? '-'}; last restore test ${v ? `${v.ok ? 'passed' : 'FAILED'} (${v.label}, ${v.at})` : 'none yet'}`
        : `BACKUPS  the repository cannot be read: ${b.error ?? ''}`,
    );
    const a = b.archiver;
    if (a)
      out.push(
        `ARCHIVE  ${a.failing ? `FAILING at ${a.lastFailedWal} (last failure ${a.lastFailedAt})` : `ok, last segment ${a.lastArchivedWal ?? 'none yet'}`}`,
      );
  }
  out.push(...problemsSection(s.problems));
  return out.join('\n');
}

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' } as const;

/** Problems in full (evidence and fix); passed and skipped checks one line each only with --verbose. */
export function formatDoctor(r: DoctorReport, verbose: boolean): string {
  const out: string[] = [];
  for (const f of r.findings) {
    const shown = verbose || f.status === 'warn' || f.status === 'fail';
    if (!shown) continue;
    out.push(`${MARK[f.status]}  ${f.id}: ${f.summary}`);
    if (f.status === 'warn' || f.status === 'fail' || verbose) for (const e of f.evidence) out.push(`        ${e}`);
    if (f.fix) out.push(`      fix: ${f.fix}`);
  }
  const { ok, warn, fail, skip } = r.counts;
  out.push(
    `${out.length ? '\n' : ''}${r.findings.length} checks on ${r.cluster}: ${ok} ok, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failed, ${skip} skipped${skip && !verbose ? ' (--verbose shows why)' : ''}`,
  );
  return out.join('\n');
}
