// What the dashboard shows, as one JSON document: the members and their roles, etcd, where
// postgres-primary and postgres-replicas point, the router's recent decisions, Prometheus's alerts and
// charts, and the newest `local chaos` run. Built from the same probes `status` uses (local or platform);
// the page only draws it.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from '../errors.ts';
import type { PostgresMemberStatus } from '../health/probes.ts';
import { getJson } from '../util/http.ts';

/** A member as the page shows it: what `status` reports, without its probe details. */
export type MemberRow = Pick<PostgresMemberStatus, 'name' | 'host' | 'role' | 'state' | 'timeline' | 'lagBytes'>;

export interface AlertRow {
  name: string;
  severity: string;
  state: 'pending' | 'firing';
  summary: string;
  member?: string;
  activeAt: string;
}

export interface Decision {
  at: string;
  text: string;
}

/** [unix seconds, value] points, oldest first. */
export type Series = [number, number][];

export interface ChaosSummary {
  dir: string;
  runs: { scenario: string; fault: string; ok: boolean; outageMs: number | null; acknowledged: number; lost: number; chart: string }[];
}

export interface DashboardView {
  cluster: string;
  profile: 'local' | 'platform';
  /** When this view was taken (ISO). */
  at: string;
  healthy: boolean;
  problems: string[];
  members: MemberRow[];
  etcd: { name: string; healthy: boolean; leader: boolean }[];
  routes: { primary: string | null; replicas: string[]; lastChangeAt: string | null; source: string };
  decisions: Decision[];
  /** Prometheus: its alerts and charts, or why they are not shown. */
  prometheus: { url: string; error?: string; alerts: AlertRow[]; commitsPerSecond: Series; lagBytes: Record<string, Series> } | { url: null; error: string };
  chaos: ChaosSummary | null;
  /** PgBouncer in front of the primary (local, pooler.enabled): serving or paused, and its server connections. */
  pooler: { reachable: boolean; paused: boolean; databases: { name: string; serverConnections: number }[]; error?: string } | null;
}

interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt: string;
}

interface PromRange {
  resultType: 'matrix';
  result: { metric: Record<string, string>; values: [number, string][] }[];
}

/** How far back the charts reach, and their resolution. */
export const CHART_WINDOW_SECONDS = 600;
const CHART_STEP_SECONDS = 5;

/** Firing and pending alerts, write rate and replication lag over the last ten minutes. */
export async function prometheusPanels(url: string, scope: string, timeoutMs: number): Promise<DashboardView['prometheus']> {
  const now = Date.now() / 1000;
  const range = (q: string) =>
    getJson<{ data: PromRange }>(
      `${url}/api/v1/query_range?${new URLSearchParams({ query: q, start: String(now - CHART_WINDOW_SECONDS), end: String(now), step: String(CHART_STEP_SECONDS) })}`,
      timeoutMs,
    ).then((r) => r.body.data.result);
  const points = (values: [number, string][]): Series => values.map(([t, v]) => [t, Number(v)]);
  try {
    const [alerts, commits, lag] = await Promise.all([
      getJson<{ data: { alerts: PromAlert[] } }>(`${url}/api/v1/alerts`, timeoutMs).then((r) => r.body.data.alerts),
      range('sum(rate(pg_stat_database_xact_commit[30s]) and on(member) (patroni_primary == 1))'),
      range(
        `(scalar(max(patroni_xlog_location{scope="${scope}"})) - patroni_xlog_replayed_location{scope="${scope}"}) and on(member) (patroni_replica{scope="${scope}"} == 1)`,
      ),
    ]);
    return {
      url,
      alerts: alerts
        .filter((a) => a.state !== 'inactive')
        .map((a) => ({
          name: a.labels.alertname ?? '?',
          severity: a.labels.severity ?? 'warning',
          state: a.state as AlertRow['state'],
          summary: a.annotations.summary ?? '',
          ...(a.labels.member ? { member: a.labels.member } : {}),
          activeAt: a.activeAt,
        }))
        .sort((a, b) => Number(b.state === 'firing') - Number(a.state === 'firing') || a.name.localeCompare(b.name)),
      commitsPerSecond: points(commits[0]?.values ?? []),
      lagBytes: Object.fromEntries(lag.map((s) => [s.metric.member ?? s.metric.name ?? '?', points(s.values)])),
    };
  } catch (e) {
    return { url, error: describe(e), alerts: [], commitsPerSecond: [], lagBytes: {} };
  }
}

/** The newest `local chaos` report under `dir` (one sub-directory per invocation, named by its start time). */
export async function newestChaos(dir: string): Promise<ChaosSummary | null> {
  const runsDirs = (await readdir(dir).catch(() => [] as string[])).filter((d) => /^\d{4}-/.test(d)).sort();
  for (const d of runsDirs.reverse()) {
    const files = (await readdir(join(dir, d)).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
    const runs: ChaosSummary['runs'] = [];
    for (const f of files) {
      try {
        const run = JSON.parse(await readFile(join(dir, d, f), 'utf8')) as {
          scenario: string;
          fault: string;
          verdict: { ok: boolean; outageMs: number | null; acknowledged: number; lost: number[] };
        };
        runs.push({
          scenario: run.scenario,
          fault: run.fault,
          ok: run.verdict.ok,
          outageMs: run.verdict.outageMs,
          acknowledged: run.verdict.acknowledged,
          lost: run.verdict.lost.length,
          chart: `${d}/${f.replace(/\.json$/, '.svg')}`,
        });
      } catch {
        // A run still being written, or not a run: skipped.
      }
    }
    if (runs.length) return { dir: d, runs };
  }
  return null;
}

/** Keeps the router's last decisions: appends when its decision or its last change differs from the newest kept. */
export function recordDecision(log: Decision[], text: string | undefined, at: string | null | undefined, max = 20): Decision[] {
  if (!text) return log;
  const newest = log.at(-1);
  if (newest && newest.text === text) return log;
  return [...log, { at: at ?? new Date().toISOString(), text }].slice(-max);
}
