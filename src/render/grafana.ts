// A Grafana dashboard (the classic JSON model, typed by Grafana's own schema package) with the panels of
// `gardenos dashboard`, for users who already run Grafana: who leads, each member's role, timeline and lag,
// commits per second, etcd, where the router and HAProxy send the primary, how fast the router follows a
// new leader, the firing alerts, backups and free disk. Every query is PromQL over the metrics GardenOS's
// Prometheus scrapes (`promtool` parses each in the unit tests). A `datasource` variable picks the
// Prometheus on import.
import type { Dashboard, Panel } from '@grafana/schema';
import type { Config } from '../config/schema.ts';

export interface GrafanaQuery {
  expr: string;
  legendFormat: string;
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, resolved when the dashboard is imported
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** The panels' queries, by panel title: what the tests parse with promtool. */
export function grafanaQueries(config: Config): Record<string, GrafanaQuery[]> {
  const s = `scope="${config.postgres.scope}"`;
  return {
    Leader: [{ expr: `max by (member) (patroni_primary{${s}}) == 1`, legendFormat: '{{member}}' }],
    'Members: role': [
      { expr: `max by (member) (patroni_primary{${s}})`, legendFormat: '{{member}} leader' },
      { expr: `max by (member) (patroni_sync_standby{${s}})`, legendFormat: '{{member}} sync standby' },
      { expr: `max by (member) (patroni_postgres_running{${s}})`, legendFormat: '{{member}} running' },
    ],
    'Members: timeline': [{ expr: `max by (member) (patroni_postgres_timeline{${s}})`, legendFormat: '{{member}}' }],
    'Replication lag': [
      {
        expr: `(scalar(max(patroni_xlog_location{${s}})) - patroni_xlog_replayed_location{${s}}) and on(member) (patroni_replica{${s}} == 1)`,
        legendFormat: '{{member}}',
      },
    ],
    'Commits per second (leader)': [{ expr: 'sum(rate(pg_stat_database_xact_commit[1m]) and on(member) (patroni_primary == 1))', legendFormat: 'commits/s' }],
    'etcd members': [
      { expr: 'up{job="etcd"}', legendFormat: '{{member}} up' },
      { expr: 'etcd_server_is_leader', legendFormat: '{{member}} leader' },
    ],
    'postgres-primary routes to': [
      { expr: 'gardenos_router_primary == 1', legendFormat: 'router → {{member}}' },
      { expr: 'haproxy_backend_active_servers{proxy=~"postgres-primary|postgres-replicas"}', legendFormat: 'HAProxy {{proxy}} servers up ({{instance}})' },
    ],
    'Router: leader change → route (p99)': [
      { expr: 'histogram_quantile(0.99, sum by (le) (rate(gardenos_router_leader_change_to_route_seconds_bucket[1h])))', legendFormat: 'p99' },
    ],
    'Firing alerts': [{ expr: 'ALERTS{alertstate="firing"}', legendFormat: '{{alertname}} {{member}}' }],
    'Newest backup age': [{ expr: 'time() - max(gardenos_backup_last_success_timestamp_seconds)', legendFormat: 'age' }],
    'Free disk': [
      {
        expr: '100 * node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs"}',
        legendFormat: '{{instance}} {{mountpoint}}',
      },
    ],
  };
}

/** Panel type, unit and size by title (24 columns a row). */
const LAYOUT: Record<string, { type: string; unit: string; w: number; h: number }> = {
  Leader: { type: 'stat', unit: 'none', w: 6, h: 5 },
  'Members: role': { type: 'table', unit: 'none', w: 12, h: 5 },
  'Members: timeline': { type: 'stat', unit: 'none', w: 6, h: 5 },
  'Replication lag': { type: 'timeseries', unit: 'bytes', w: 12, h: 8 },
  'Commits per second (leader)': { type: 'timeseries', unit: 'ops', w: 12, h: 8 },
  'etcd members': { type: 'stat', unit: 'none', w: 8, h: 5 },
  'postgres-primary routes to': { type: 'stat', unit: 'none', w: 8, h: 5 },
  'Router: leader change → route (p99)': { type: 'stat', unit: 's', w: 8, h: 5 },
  'Firing alerts': { type: 'table', unit: 'none', w: 12, h: 8 },
  'Newest backup age': { type: 'stat', unit: 's', w: 6, h: 8 },
  'Free disk': { type: 'bargauge', unit: 'percent', w: 6, h: 8 },
};

export function renderGrafanaDashboard(config: Config): Dashboard {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels: Panel[] = Object.entries(grafanaQueries(config)).map(([title, queries], i) => {
    const l = LAYOUT[title]!;
    if (x + l.w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { x, y, w: l.w, h: l.h };
    x += l.w;
    rowHeight = Math.max(rowHeight, l.h);
    return {
      id: i + 1,
      type: l.type,
      title,
      datasource: DATASOURCE,
      gridPos,
      targets: queries.map((q, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource: DATASOURCE,
        expr: q.expr,
        legendFormat: q.legendFormat,
        ...(l.type === 'table' ? { format: 'table', instant: true } : {}),
      })),
      fieldConfig: { defaults: { unit: l.unit }, overrides: [] },
      options: {},
    };
  });
  return {
    title: `GardenOS — ${config.cluster.name}`,
    uid: `gardenos-${config.cluster.name}`.slice(0, 40),
    description: 'Rendered by `gardenos render` from gardenos.yaml: the same panels as `gardenos dashboard`.',
    tags: ['gardenos', 'patroni', 'postgresql', 'etcd'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'browser',
    templating: { list: [{ name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', hide: 0 }] },
    annotations: { list: [] },
    links: [],
    panels,
  };
}
