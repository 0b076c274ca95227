// The doctor's catalogue: every failure the journal spent hours on, each a
// plain function of the gathered facts that says what it looked at (evidence)
// and the exact fix. A check whose facts are missing says so and is skipped.
import { BlockList, isIP } from 'node:net';
import type { DoctorFacts, HbaRule, HostFacts, LocalFacts } from './facts.ts';
import { PRIMARY_SERVICE, type KubeFacts } from '../clients/kubernetes.ts';
import { memberRunning } from '../clients/patroni.ts';
import { groupCauses } from './causes.ts';
import { etcdProblems } from '../health/judge.ts';
import type { EtcdMemberStatus } from '../health/probes.ts';
import type { Config } from '../config/schema.ts';
import type { Topology } from '../render/topology.ts';
import { PRIMARY_ROUTE, REPLICAS_BACKEND } from '../names.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Finding {
  id: string;
  title: string;
  status: CheckStatus;
  /** One line: what is wrong, or that it is fine. */
  summary: string;
  /** What the check looked at. */
  evidence: string[];
  /** The exact fix (commands or the field to edit); only when not ok. */
  fix?: string;
}

export type Verdict = Omit<Finding, 'id' | 'title'>;

export interface Check {
  id: string;
  title: string;
  source: 'local' | 'kubernetes' | 'host' | 'platform';
  run(f: DoctorFacts): Verdict;
}

export const ok = (summary: string, evidence: string[] = []): Verdict => ({ status: 'ok', summary, evidence });
export const skip = (summary: string): Verdict => ({ status: 'skip', summary, evidence: [] });
export const bad = (status: 'warn' | 'fail', summary: string, evidence: string[], fix: string): Verdict => ({ status, summary, evidence, fix });

// A check runs only when the facts of its `source` were gathered (runChecks skips it otherwise),
// so these hand each check its own facts, present.
const local = (fn: (l: LocalFacts) => Verdict) => (f: DoctorFacts) => fn(f.local!);
const etcdEvidence = (etcd: readonly EtcdMemberStatus[]) =>
  etcd.map((e) => `${e.name} ${e.endpoint}: ${e.healthy ? `healthy${e.leader ? ', leader' : ''}` : (e.error ?? 'no answer')}`);
const kube = (fn: (k: KubeFacts, f: DoctorFacts) => Verdict) => (f: DoctorFacts) => fn(f.kube!, f);
const host = (fn: (h: HostFacts) => Verdict) => (f: DoctorFacts) => fn(f.host!);

/** Why a check cannot run: the facts of its source are missing. */
function missing(source: Check['source'], f: DoctorFacts): string | undefined {
  if (source === 'local') return f.local ? undefined : 'no local cluster to look at';
  if (source === 'host') return f.host ? undefined : 'host facts not gathered';
  if (source === 'platform') return f.platform ? undefined : 'no platform to look at';
  return f.kube ? undefined : f.kubeError ? `Kubernetes API: ${f.kubeError}` : 'no kubeconfig given (--kubeconfig)';
}

const recent = (lines: string[], pattern: RegExp) => lines.filter((l) => pattern.test(l)).slice(-3);

// --- address arithmetic for pg_hba rules -------------------------------------------------------

function maskBits(netmask: string): number {
  if (isIP(netmask) === 4) return netmask.split('.').reduce((n, o) => n + (Number(o) >>> 0).toString(2).split('1').length - 1, 0);
  const full = netmask.split('::')[0]!.split(':').filter(Boolean);
  return full.reduce((n, h) => n + parseInt(h, 16).toString(2).split('1').length - 1, 0);
}

/** Whether the rule's address/netmask covers the whole network `cidr`. */
function covers(rule: HbaRule, cidr: string): boolean {
  if (rule.address === 'all') return true;
  if (!rule.address || !rule.netmask) return false;
  const [net, bits] = cidr.split('/') as [string, string];
  const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
  if ((isIP(rule.address) === 6 ? 'ipv6' : 'ipv4') !== family) return false;
  const ruleBits = maskBits(rule.netmask);
  if (ruleBits > Number(bits)) return false;
  const list = new BlockList();
  list.addSubnet(rule.address, ruleBits, family);
  return list.check(net, family);
}

/** The first rule a connection from `cidr` for an ordinary database and user meets, with or without TLS. */
export function firstHbaMatch(rules: HbaRule[], cidr: string, tls: boolean): HbaRule | undefined {
  return rules.find(
    (r) =>
      (r.type === 'host' || r.type === (tls ? 'hostssl' : 'hostnossl')) &&
      r.databases.some((d) => d === 'all' || d === 'sameuser') &&
      r.users.includes('all') &&
      covers(r, cidr),
  );
}

/** How pg_hba treats a TLS client from each member and client network: one evidence line each, and the networks refused. */
export function hbaAcceptance(
  hba: HbaRule[],
  topology: Pick<Topology, 'memberNetworks' | 'clientNetworks'>,
): { networks: string[]; evidence: string[]; refused: string[] } {
  const networks = [...new Set([...topology.memberNetworks, ...topology.clientNetworks])];
  const evidence: string[] = [];
  const refused: string[] = [];
  for (const net of networks) {
    const rule = firstHbaMatch(hba, net, true);
    evidence.push(`${net} over TLS → ${rule ? `line ${rule.line}: ${rule.type} ${rule.address}/${rule.netmask} ${rule.method}` : 'no matching line'}`);
    if (!rule || rule.method === 'reject') refused.push(net);
  }
  return { networks, evidence, refused };
}

type MemberRow = { name: string; role: string; state: string; lagBytes: number | null; apiReachable: boolean };

/**
 * The replicas that answer, and which of them are not streaming (`streaming` says what counts) or lag past
 * router.replicaMaxLagBytes; whether synchronous mode lacks its standby.
 */
export function replicationState(members: MemberRow[], config: Config, streaming: (m: MemberRow) => boolean) {
  const limit = config.router.replicaMaxLagBytes;
  const replicas = members.filter((m) => m.role !== 'leader' && m.apiReachable);
  return {
    limit,
    evidence: replicas.map((m) => `${m.name}: ${m.role}, ${m.state}, lag ${m.lagBytes ?? 'unknown'} bytes (limit ${limit})`),
    replicas,
    notStreaming: replicas.filter((m) => !streaming(m)),
    lagging: replicas.filter((m) => m.lagBytes === null || m.lagBytes > limit),
    noSync: config.postgres.synchronousMode && !members.some((m) => m.role === 'sync_standby'),
  };
}

// --- the catalogue -----------------------------------------------------------------------------

export const CHECKS: readonly Check[] = [
  {
    id: 'etcd-health',
    title: 'etcd members healthy, with a leader',
    source: 'local',
    run: local(({ status }) => {
      // The judgement `status` makes (health/judge.ts); the doctor adds the severity, the evidence and the fix.
      if (etcdProblems(status.etcd).length === 0) return ok('all members healthy', etcdEvidence(status.etcd));
      const down = status.etcd.filter((e) => !e.healthy);
      const evidence = etcdEvidence(status.etcd);
      if (!status.etcd.some((e) => e.leader))
        return bad(
          'fail',
          'etcd has no leader: Patroni cannot hold or renew its leader key',
          evidence,
          'start the etcd members (`gardenos local up`); a majority must run for etcd to elect a leader',
        );
      if (down.length)
        return bad(
          'warn',
          `etcd ${down.map((d) => d.name).join(', ')} not healthy; the cluster keeps quorum but one more loss stops it`,
          evidence,
          '`gardenos local up` restarts what is not running; `gardenos local logs etcd-<member>` says why it stopped',
        );
      return ok('all members healthy', evidence);
    }),
  },
  {
    id: 'patroni-etcd-v2',
    title: "Patroni uses etcd's v3 API",
    source: 'local',
    run: (f) => {
      const evidence: string[] = [];
      const wrong: string[] = [];
      for (const m of f.local?.members ?? []) {
        if (!m.dcs) continue;
        evidence.push(`${m.configFile}: ${m.dcs.section}:`);
        if (m.dcs.section === 'etcd') wrong.push(m.name);
        for (const l of recent(m.log, /\/v2\/|EtcdKeyNotFound|etcd\.EtcdException|404 page not found/)) evidence.push(`${m.name} log: ${l}`);
      }
      for (const s of f.kube?.statefulSets ?? []) {
        const env = s.spec?.template.spec?.containers.flatMap((c) => c.env ?? []) ?? [];
        const v2 = env.filter((e) => /^(PATRONI_ETCD_|ETCD_HOSTS?$|ETCD_HOST$)/.test(e.name));
        if (v2.length) {
          wrong.push(`StatefulSet ${s.metadata?.namespace}/${s.metadata?.name}`);
          evidence.push(`StatefulSet ${s.metadata?.namespace}/${s.metadata?.name} sets ${v2.map((e) => e.name).join(', ')} (etcd v2 settings)`);
        }
      }
      if (wrong.length) {
        return bad(
          'fail',
          `${wrong.join(', ')} configured for the etcd v2 API; GardenOS's etcd serves v3 only (enable-v2: false)`,
          evidence,
          'use the `etcd3:` section in patroni.yml (PATRONI_ETCD3_HOSTS / ETCD3_HOST for Spilo) instead of `etcd:`; `gardenos local up` rewrites the rendered file',
        );
      }
      return ok('every member uses etcd3', evidence);
    },
  },
  {
    id: 'patroni-etcd-tls',
    title: 'Patroni reaches etcd over TLS with a client certificate',
    source: 'local',
    run: local(({ members, etcd }) => {
      const plainAnswers = etcd.some((e) => e.plainHttpAnswers);
      const evidence = [
        ...etcd.map((e) => e.plainHttp),
        ...members
          .filter((m) => m.dcs)
          .map((m) => `${m.name}: protocol ${m.dcs!.protocol ?? 'http (Patroni default)'}, client certificate ${m.dcs!.hasClientCert ? 'set' : 'missing'}`),
      ];
      const mismatch = members.filter((m) => m.dcs && m.dcs.section !== 'none' && ((m.dcs.protocol ?? 'http') === 'https') === plainAnswers);
      if (mismatch.length) {
        const speaks = plainAnswers ? 'plain HTTP' : 'only HTTPS (mutual TLS)';
        return bad(
          'fail',
          `${mismatch.map((m) => m.name).join(', ')} talk${mismatch.length === 1 ? 's' : ''} ${plainAnswers ? 'HTTPS' : 'plain HTTP'} to etcd, which serves ${speaks}`,
          evidence,
          plainAnswers
            ? 'etcd must not serve plain HTTP: render it with `gardenos local up` (client-transport-security with client-cert-auth)'
            : 'set `protocol: https` with cacert, cert and key in the etcd3 section of patroni.yml (as GardenOS renders it: `gardenos local up`)',
        );
      }
      const noCert = members.filter((m) => m.dcs && m.dcs.section !== 'none' && !m.dcs.hasClientCert);
      if (noCert.length)
        return bad(
          'fail',
          `${noCert.map((m) => m.name).join(', ')} has no etcd client certificate; etcd requires one`,
          evidence,
          'set cert and key (the member certificate) in the etcd3 section of patroni.yml',
        );
      return ok('TLS with client certificates; etcd refuses plain HTTP', evidence);
    }),
  },
  {
    id: 'pgdata-permissions',
    title: 'PostgreSQL data directories owned by postgres with mode 0700/0750',
    source: 'local',
    run: local(({ members }) => {
      const evidence: string[] = [];
      const wrong: string[] = [];
      for (const m of members) {
        const d = m.dataDir;
        const logs = recent(m.log, /has invalid permissions|could not change permissions|wrong ownership|Permission denied/);
        if (d.exists) {
          evidence.push(`${d.path}: mode ${d.mode!.toString(8).padStart(4, '0')}, uid ${d.uid} (PostgreSQL runs as uid ${m.expectedUid})`);
          if (d.uid !== m.expectedUid || (d.mode! & 0o027) !== 0) wrong.push(m.name);
        } else {
          evidence.push(`${d.path}: absent; parent mode ${d.parentMode?.toString(8) ?? '?'}, uid ${d.parentUid ?? '?'}`);
          if (d.parentUid !== undefined && d.parentUid !== m.expectedUid && ((d.parentMode ?? 0) & 0o002) === 0) wrong.push(m.name);
        }
        for (const l of logs) evidence.push(`${m.name} log: ${l}`);
        if (logs.length && !wrong.includes(m.name)) wrong.push(m.name);
      }
      if (wrong.length) {
        const m = members.find((x) => x.name === wrong[0])!;
        return bad(
          'fail',
          `data directory of ${wrong.join(', ')} has the wrong owner or mode: initdb and PostgreSQL refuse to run there`,
          evidence,
          `chown -R ${m.expectedUid}:${m.expectedUid} ${m.dataDir.path} && chmod 700 ${m.dataDir.path} (on Kubernetes: the volume-permissions init container, or fsGroup)`,
        );
      }
      return ok('owned by the PostgreSQL user, not group/world writable', evidence);
    }),
  },
  {
    id: 'dcs-stale-state',
    title: 'no stale Patroni state in etcd',
    source: 'local',
    run: local(({ dcsKeys, dcsError, patroniKeys: keys, members, status }) => {
      if (!dcsKeys) return skip(`cannot read ${keys.prefix} from etcd: ${dcsError}`);
      const init = dcsKeys[keys.initialize];
      const leader = dcsKeys[keys.leader];
      const waiting = members.flatMap((m) => recent(m.log, /waiting for leader to bootstrap/).map((l) => `${m.name} log: ${l}`));
      const evidence = [
        `${keys.initialize} = ${init ?? '(absent)'}`,
        `${keys.leader} = ${leader ?? '(absent)'}`,
        ...members.map((m) => `${m.dataDir.path}: ${m.dataDir.hasPgVersion ? 'has data' : 'no data'}`),
      ];
      const noData = members.every((m) => !m.dataDir.hasPgVersion);
      const live = status.members.some((m) => m.role === 'leader');
      if (init !== undefined && leader === undefined && !live && (noData || waiting.length)) {
        return bad(
          'fail',
          `etcd holds an initialize key (${init}) of a cluster whose data is gone; new members wait forever for "leader to bootstrap"`,
          [...evidence, ...waiting],
          'gardenos local dcs clean   # refuses on a live cluster, backs up every key first; then `gardenos local up`',
        );
      }
      return ok(init ? 'the initialize key belongs to a cluster with data' : 'no initialize key yet', evidence);
    }),
  },
  {
    id: 'pg-hba',
    title: 'pg_hba accepts TLS clients from the member and client networks',
    source: 'local',
    run: local(({ hba, hbaError, topology, members, config }) => {
      if (!hba) return skip(`cannot read pg_hba_file_rules: ${hbaError}`);
      const { networks, evidence, refused } = hbaAcceptance(hba, topology);
      if (refused.length) {
        return bad(
          'fail',
          `pg_hba refuses TLS clients from ${refused.join(', ')}${refused.includes(config.k3s.clusterCidr) ? ' (the pod network)' : ''}`,
          evidence,
          'do not edit pg_hba.conf (Patroni rewrites it): keep `postgresql.pg_hba` in patroni.yml as GardenOS renders it (`gardenos local up`), adding networks through `nodes`/`k3s.clusterCidr` in gardenos.yaml',
        );
      }
      const rejected = members.flatMap((m) =>
        recent(m.log, /(no pg_hba\.conf entry for|pg_hba\.conf rejects connection for) host .*no encryption/).map((l) => `${m.name} log: ${l}`),
      );
      if (rejected.length) {
        return bad(
          'warn',
          'clients connecting without TLS are being refused (GardenOS serves PostgreSQL over TLS only)',
          [...evidence, ...rejected],
          'connect with sslmode=verify-full (or require) and the cluster CA: the URIs from `gardenos local status` do; for libpq clients set PGSSLMODE=require',
        );
      }
      return ok(`TLS clients accepted from ${networks.join(', ')}`, evidence);
    }),
  },
  {
    id: 'patroni-members',
    title: "every member's Patroni answers",
    source: 'local',
    run: local(({ status, logs }) => {
      const evidence = status.members.map(
        (m) => `${m.name}: ${m.apiReachable ? `${m.role}, ${m.state}` : `no answer on the REST API (${m.down ?? 'unknown why'})`}`,
      );
      const silent = status.members.filter((m) => !m.apiReachable);
      if (!silent.length) return ok('all answer', evidence);
      // What their logs say since the last start: a known cause (its fix comes from member-logs), or the error lines.
      for (const m of silent) {
        const log = logs.find((l) => l.process === `patroni-${m.name}`);
        if (log && !log.causes.length) evidence.push(...log.errors.map((e) => `${m.name} log: ${e}`));
      }
      const known = silent.some((m) => logs.some((l) => l.process === `patroni-${m.name}` && l.causes.some((x) => x.fatal)));
      return bad(
        'fail',
        `Patroni on ${silent.map((m) => m.name).join(', ')} does not answer`,
        evidence,
        known
          ? 'see member-logs below for the cause and its fix'
          : '`gardenos local up` starts what is not running and stops with the cause when a member cannot start; `gardenos local logs <member>` shows the whole log',
      );
    }),
  },
  {
    id: 'member-logs',
    title: "no start-up failure in the daemons' logs since their last start",
    source: 'local',
    run: local(({ logs, status }) => {
      // A member that is healthy again has only history in its log (a module installed since, say).
      const healthy = new Set([
        ...status.etcd.filter((e) => e.healthy).map((e) => `etcd-${e.name}`),
        ...status.members.filter((m) => m.apiReachable && memberRunning(m)).map((m) => `patroni-${m.name}`),
        ...(status.haproxy.reachable ? ['haproxy'] : []),
        ...(status.router.reachable ? ['router'] : []),
      ]);
      const unhealthy = logs.filter((l) => !healthy.has(l.process));
      const groups = groupCauses(unhealthy.flatMap((l) => l.causes.filter((x) => x.fatal)));
      const evidence = unhealthy.map((l) => `${l.logFile}: ${l.causes.length ? l.causes.map((x) => x.id).join(', ') : 'no known failure'}`);
      if (!groups.length) return ok(unhealthy.length ? 'no known failure in the logs of the members that are down' : 'every daemon is healthy', evidence);
      return bad(
        'fail',
        groups.map((g) => `${g.processes.join(', ')}: ${g.cause.summary}`).join('; '),
        [...groups.flatMap((g) => g.cause.evidence.slice(-2).map((e) => `${g.cause.process} log: ${e}`)), ...evidence],
        groups.map((g) => g.cause.fix).join('\n      '),
      );
    }),
  },
  {
    id: 'replication',
    title: 'replicas streaming, lag within bounds',
    source: 'local',
    run: local(({ status, config }) => {
      const { limit, evidence, replicas, notStreaming, lagging, noSync } = replicationState(
        status.members,
        config,
        (m) => m.state === 'streaming' || m.state === 'running',
      );
      if (notStreaming.length || noSync) {
        return bad(
          'fail',
          [
            notStreaming.length ? `${notStreaming.map((m) => `${m.name} is ${m.state}`).join(', ')}` : '',
            noSync ? 'no synchronous standby: writes wait or run unprotected' : '',
          ]
            .filter(Boolean)
            .join('; '),
          evidence,
          '`gardenos local logs <member>`; a replica that cannot catch up: `gardenos local db reinit <member>`',
        );
      }
      if (lagging.length) {
        return bad(
          'warn',
          `${lagging.map((m) => m.name).join(', ')} ${lagging.length === 1 ? 'is' : 'are'} more than ${limit} bytes behind (or cannot tell); the router keeps ${lagging.length === 1 ? 'it' : 'them'} out of the replicas pool`,
          evidence,
          'look for long transactions or I/O on the replica (`gardenos local logs <member>`); if it never catches up: `gardenos local db reinit <member>`',
        );
      }
      return ok(replicas.length ? 'all streaming within the lag limit' : 'no replicas answer', evidence);
    }),
  },
  {
    id: 'haproxy-backends',
    title: 'HAProxy routes to the leader and the running replicas',
    source: 'local',
    run: local(({ status }) => {
      if (!status.haproxy.reachable)
        return bad(
          'fail',
          `HAProxy does not answer: ${status.haproxy.error ?? ''}`,
          [],
          '`gardenos local up` starts it; `gardenos local logs haproxy` says why it stopped',
        );
      const rows = status.haproxy.servers;
      const evidence = rows.map((s) => `${s.proxy}/${s.server}: ${s.status} (${s.checkStatus || 'no check'})`);
      const up = (proxy: string) => rows.filter((s) => s.proxy === proxy && s.status.startsWith('UP')).map((s) => s.server);
      const leader = status.members.find((m) => m.role === 'leader')?.name;
      const problems: string[] = [];
      if (leader && !up(PRIMARY_ROUTE).includes(leader)) problems.push(`the primary backend does not have the leader ${leader} up`);
      const running = status.members.filter((m) => m.role !== 'leader' && (m.state === 'streaming' || m.state === 'running')).map((m) => m.name);
      const replicasDown = rows.filter((s) => s.proxy === REPLICAS_BACKEND && running.includes(s.server) && s.status.startsWith('DOWN'));
      if (replicasDown.length)
        problems.push(
          `replica backend${replicasDown.length === 1 ? '' : 's'} ${replicasDown.map((s) => s.server).join(', ')} DOWN although Patroni runs ${replicasDown.length === 1 ? 'it' : 'them'}`,
        );
      const down = rows.filter((s) => s.status.startsWith('DOWN')).map((s) => `${s.proxy}/${s.server}`);
      if (problems.length) {
        return bad(
          'fail',
          problems.join('; '),
          evidence,
          `HAProxy checks each member's Patroni REST API (/primary, /replica): a DOWN server means that check fails — check ${down.join(', ') || 'the member'} with \`gardenos local status\` and its log`,
        );
      }
      return ok('leader and running replicas are UP', evidence);
    }),
  },
  {
    id: 'primary-endpoint',
    title: 'postgres-primary points at the current leader only',
    source: 'local',
    run: (f) => {
      const leaderName = f.local?.status.members.find((m) => m.role === 'leader')?.name ?? null;
      const evidence: string[] = [];
      const problems: string[] = [];
      if (f.local) {
        const r = f.local.status.router;
        evidence.push(r.reachable ? `router: primary → ${r.primary ?? 'nobody'} (${r.lastDecision ?? ''})` : `router: no answer (${r.error ?? ''})`);
        if (!r.reachable) problems.push('the router does not answer, so nothing moves postgres-primary on a failover');
        else if (r.primary !== leaderName) problems.push(`the router routes writes to ${r.primary ?? 'nobody'}, the leader is ${leaderName ?? 'none'}`);
      }
      if (f.kube) {
        const ep = f.kube.primaryEndpoints;
        const addresses = ep?.subsets?.flatMap((s) => (s.addresses ?? []).map((a) => a.ip)) ?? [];
        const leaderAddress = f.local?.status.members.find((m) => m.name === leaderName)?.host;
        evidence.push(ep ? `Endpoints ${PRIMARY_SERVICE}: [${addresses.join(', ')}]` : `Endpoints ${PRIMARY_SERVICE}: missing`);
        if (!ep) problems.push(`the ${PRIMARY_SERVICE} Endpoints object is missing: in-cluster clients have nowhere to connect`);
        else if (addresses.length !== 1 || (leaderAddress && addresses[0] !== leaderAddress))
          problems.push(
            `${PRIMARY_SERVICE} points at [${addresses.join(', ')}], the leader is ${leaderName ?? 'unknown'}${leaderAddress ? ` (${leaderAddress})` : ''}`,
          );
      }
      if (problems.length) {
        return bad(
          'fail',
          problems.join('; '),
          evidence,
          f.local && !f.local.status.router.reachable
            ? '`gardenos local up` starts the router; `gardenos local logs router` says why it stopped'
            : 'apply the router manifests (`gardenos render router | kubectl apply -f -`) and check its log (`kubectl -n <database namespace> logs deploy/gardenos-router`)',
        );
      }
      return ok(`routes to the leader ${leaderName ?? ''}`.trim(), evidence);
    },
  },
  {
    id: 'pooler',
    title: 'the pooler (PgBouncer) serves the primary, not paused',
    source: 'local',
    run: local(({ status, config }) => {
      const p = status.pooler;
      if (!config.pooler.enabled || !p) return skip('the pooler is off (pooler.enabled)');
      const evidence = p.reachable
        ? [
            ...p.databases.map((d) => `${d.name} → ${d.host}:${d.port}: ${d.paused ? 'paused' : 'serving'}, ${d.currentConnections} server connections`),
            ...(p.pausedBy ? [`paused by GardenOS: ${p.pausedBy}`] : []),
          ]
        : [`admin console: ${p.error ?? 'no answer'}`];
      if (!p.reachable)
        return bad(
          'fail',
          'the pooler does not answer: clients of the pooled endpoint cannot connect',
          evidence,
          '`gardenos local up` starts it; `gardenos local logs pooler` says why it stopped',
        );
      if (p.paused)
        return bad(
          'warn',
          'the pooler is paused: its clients wait',
          evidence,
          'a switchover in progress resumes it; one left paused (an interrupted switchover): `gardenos local up` resumes it',
        );
      return ok('serving', evidence);
    }),
  },
  {
    id: 'k8s-default-storage-class',
    title: 'Kubernetes has a default StorageClass',
    source: 'kubernetes',
    run: kube((k) => {
      const isDefault = (s: (typeof k.storageClasses)[number]) => s.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true';
      const evidence = k.storageClasses.map((s) => `${s.metadata?.name} (${s.provisioner})${isDefault(s) ? ' default' : ''}`);
      const defaults = k.storageClasses.filter(isDefault);
      if (defaults.length === 0) {
        return bad(
          'fail',
          `no default StorageClass: PersistentVolumeClaims without a class stay Pending${k.storageClasses.length ? '' : ' (there is no StorageClass at all)'}`,
          evidence.length ? evidence : ['kubectl get storageclass: none'],
          k.storageClasses.length
            ? `kubectl patch storageclass ${k.storageClasses[0]!.metadata?.name} -p '{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}}'`
            : 'apply the rendered local-path StorageClass (`gardenos render`), or re-enable K3s local-storage (remove it from k3s.disable)',
        );
      }
      if (defaults.length > 1)
        return bad(
          'warn',
          `${defaults.length} default StorageClasses; Kubernetes picks the newest`,
          evidence,
          'remove the is-default-class annotation from all but one',
        );
      return ok(`default: ${defaults[0]!.metadata?.name}`, evidence);
    }),
  },
  {
    id: 'k8s-control-plane-taint',
    title: 'servers that should run workloads are not tainted',
    source: 'kubernetes',
    run: kube((k, f) => {
      const blocking = /^node-role\.kubernetes\.io\/(control-plane|master)$|^CriticalAddonsOnly$/;
      const tainted = k.nodes.flatMap((n) =>
        (n.spec?.taints ?? [])
          .filter((t) => blocking.test(t.key) && t.effect !== 'PreferNoSchedule')
          .map((t) => ({ node: n.metadata?.name ?? '?', taint: `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}` })),
      );
      const evidence = k.nodes.map((n) => `${n.metadata?.name}: ${(n.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).join(', ') || 'no taints'}`);
      const hybrid = (f.local ?? f.platform)?.config.k3s.serversRunWorkloads ?? true;
      if (tainted.length && hybrid) {
        return bad(
          'fail',
          `control-plane taint on ${tainted.map((t) => t.node).join(', ')}: workloads cannot schedule on the hybrid servers`,
          evidence,
          `${tainted.map((t) => `kubectl taint node ${t.node} ${t.taint}-`).join(' && ')}   (and drop node-taint from the K3s config: \`gardenos render\`)`,
        );
      }
      return ok(hybrid ? 'no control-plane taints' : 'servers are tainted on purpose (k3s.serversRunWorkloads: false)', evidence);
    }),
  },
  {
    id: 'docker-group',
    title: 'docker group membership active in this shell',
    source: 'host',
    run: host((h) => {
      const line = h.groupFile.split('\n').find((l) => l.startsWith('docker:'));
      if (!line) return ok('no docker group on this host');
      const [, , gid, members] = line.split(':');
      const listed = (members ?? '')
        .split(',')
        .map((m) => m.trim())
        .includes(h.user);
      const active = h.activeGroups.includes(Number(gid));
      const evidence = [`/etc/group: ${line.trim()}`, `${h.user} (uid ${h.uid}) active groups: ${h.activeGroups.join(',') || 'none'}`];
      if (h.uid !== 0 && listed && !active) {
        return bad(
          'fail',
          `${h.user} is in the docker group, but this shell started before that: "permission denied" on /var/run/docker.sock (not a DNS or network fault)`,
          evidence,
          'log out and back in, or run `newgrp docker` in this shell',
        );
      }
      return ok(
        h.uid === 0
          ? 'root needs no docker group'
          : listed
            ? 'active in this shell'
            : `${h.user} is not in the docker group (fine unless you use docker without sudo)`,
        evidence,
      );
    }),
  },
  {
    id: 'container-bridge-ipv4',
    title: 'container bridges have their IPv4 address',
    source: 'host',
    run: host((h) => {
      if (!h.interfaces) return skip(`cannot list interfaces: ${h.interfacesError}`);
      const bridges = h.interfaces.filter((i) => i.ifname === 'docker0' || i.ifname === 'cni0');
      const evidence = bridges.map((b) => `${b.ifname}: ${(b.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).join(', ') || 'no address'}`);
      const bare = bridges.filter((b) => !(b.addr_info ?? []).some((a) => a.family === 'inet'));
      if (bare.length) {
        return bad(
          'fail',
          `${bare.map((b) => b.ifname).join(', ')} has no IPv4 address: containers on it cannot reach other networks`,
          evidence,
          bare
            .map((b) => (b.ifname === 'docker0' ? 'sudo systemctl restart docker' : 'sudo systemctl restart k3s   # recreates cni0 with its pod CIDR address'))
            .join(' && '),
        );
      }
      return ok(bridges.length ? 'every container bridge has an IPv4 address' : 'no container bridge on this host', evidence);
    }),
  },
];

export function runChecks(facts: DoctorFacts, checks: readonly Check[] = CHECKS): Finding[] {
  return checks.map((c) => {
    const why = missing(c.source, facts);
    if (why) return { id: c.id, title: c.title, status: 'skip', summary: why, evidence: [] };
    try {
      return { id: c.id, title: c.title, ...c.run(facts) };
    } catch (e) {
      return { id: c.id, title: c.title, status: 'fail', summary: `the check itself failed: ${(e as Error).message}`, evidence: [] };
    }
  });
}
