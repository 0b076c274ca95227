// Known causes of a member that will not start, read from its own log: the
// line that says why, what it means, and the fix. Pure (lines in, findings
// out), shared by `local up` — which stops waiting once a cause that cannot
// heal by itself shows up — and doctor's log check.

export interface LogCause {
  /** Stable id for scripts: python-module, pgdata-permissions, port-in-use, … */
  id: string;
  /** The process whose log said it: patroni-node2, etcd-node1, haproxy. */
  process: string;
  summary: string;
  fix: string;
  /** Will not go away by waiting (a missing module); false for what a starting cluster shows briefly. */
  fatal: boolean;
  /** The log lines that show it, newest last (at most three). */
  evidence: string[];
  /** For port-in-use: where, so the edge can name the process holding it. */
  address?: { host: string; port: number };
}

interface Rule {
  id: string;
  pattern: RegExp;
  fatal: boolean;
  explain(m: RegExpExecArray, process: string): Pick<LogCause, 'summary' | 'fix'> & { address?: LogCause['address'] };
}

/** Debian packages of the Python modules Patroni and its etcd client import. */
const PYTHON_PACKAGES: Record<string, string> = {
  idna: 'python3-idna',
  psycopg2: 'python3-psycopg2',
  psycopg: 'python3-psycopg',
  etcd: 'python3-etcd',
  yaml: 'python3-yaml',
  urllib3: 'python3-urllib3',
  dateutil: 'python3-dateutil',
  psutil: 'python3-psutil',
  click: 'python3-click',
  prettytable: 'python3-prettytable',
  ydiff: 'python3-ydiff',
  OpenSSL: 'python3-openssl',
  cryptography: 'python3-cryptography',
  dns: 'python3-dnspython',
};

export function debianPackageOfPythonModule(module: string): string {
  const top = module.split('.')[0]!;
  return PYTHON_PACKAGES[top] ?? `python3-${top.toLowerCase().replaceAll('_', '-')}`;
}

const RULES: readonly Rule[] = [
  {
    id: 'python-module',
    pattern: /No module named '([\w.]+)'/,
    fatal: true,
    explain: (m) => {
      const pkg = debianPackageOfPythonModule(m[1]!);
      return {
        summary: `the Python module ${m[1]} is missing, so Patroni cannot ${m[1] === 'idna' ? 'reach etcd over TLS' : 'run'}`,
        fix: `sudo apt-get install -y ${pkg}   # or run scripts/install-deps.sh, which checks every module Patroni imports; then \`gardenos local up\``,
      };
    },
  },
  {
    // Patroni swallows the ImportError of each DCS module ("Failed to import patroni.dcs.etcd3", at INFO)
    // and then finds no DCS for its etcd3 section.
    id: 'patroni-etcd3-module',
    pattern: /Can not find suitable configuration of distributed configuration store/,
    fatal: true,
    explain: () => ({
      summary: 'Patroni could not load its etcd3 support: the module patroni.dcs.etcd3 failed to import (python3-etcd, or a module it needs, is missing)',
      fix: "sudo apt-get install -y python3-etcd   # scripts/install-deps.sh installs it and checks that Patroni's etcd3 module imports; then `gardenos local up`",
    }),
  },
  {
    id: 'python-module',
    pattern: /Patroni requires (psycopg)2/,
    fatal: true,
    explain: () => ({
      summary: 'the Python module psycopg2 (PostgreSQL driver) is missing, so Patroni cannot run',
      fix: 'sudo apt-get install -y python3-psycopg2   # or run scripts/install-deps.sh; then `gardenos local up`',
    }),
  },
  {
    id: 'pgdata-permissions',
    pattern: /data directory "([^"]+)" has (?:invalid permissions|group or world access|wrong ownership)/,
    fatal: true,
    explain: (m) => ({
      summary: `PostgreSQL refuses its data directory ${m[1]}: the mode or owner is wrong`,
      fix: `chmod 0700 ${m[1]} && chown -R postgres:postgres ${m[1]}   # then \`gardenos local up\``,
    }),
  },
  {
    id: 'tls-file-unreadable',
    pattern: /could not (?:load|open) (?:server certificate|private key|certificate|root certificate) file "([^"]+)": (.+)/,
    fatal: true,
    explain: (m) => ({
      summary: `PostgreSQL cannot read its TLS file ${m[1]}: ${m[2]}`,
      fix: `give the postgres user the file with mode 0600 (\`chown postgres: ${m[1]} && chmod 0600 ${m[1]}\`), or delete it and run \`gardenos local up\`, which issues it again`,
    }),
  },
  {
    // Go's wording (etcd): a file the service reads as its own user, closed to it by the file's or a directory's mode.
    id: 'file-unreadable',
    pattern: /open (\/[^\s:"]+): permission denied/,
    fatal: true,
    explain: (m) => ({
      summary: `cannot read ${m[1]}: permission denied (the file, or a directory above it, is closed to the service's user)`,
      fix: `give the service's user read access to ${m[1]} and search (x) access to every directory above it; GardenOS makes its own directories 0755 — \`gardenos up\` (hosts) or \`gardenos local up\` puts them right`,
    }),
  },
  {
    id: 'port-in-use',
    pattern:
      /could not bind IPv[46] address "([^"]+)": Address already in use|listen tcp ([\d.:[\]a-f]+?):(\d+): bind: address already in use|cannot bind socket (?:\(Address already in use\) )?(?:for proxy \S+ )?\[([\d.]+):(\d+)\]/,
    fatal: true,
    explain: (m, _process) => {
      const host = m[1] ?? m[2] ?? m[4];
      const port = Number(m[3] ?? m[5] ?? 0);
      return {
        summary: `cannot bind ${host}${port ? `:${port}` : ''}: the address is already in use`,
        fix: 'stop what listens there (`ss -ltnp` shows it), or give this cluster other addresses with local.addressPrefix / local.firstHost in gardenos.yaml',
        ...(host && port ? { address: { host, port } } : {}),
      };
    },
  },
  {
    id: 'patroni-api-port-in-use',
    pattern: /\[Errno 98\] Address already in use/,
    fatal: true,
    explain: () => ({
      summary: 'cannot bind its REST API: the address is already in use',
      fix: "stop what listens on the member's Patroni port (`ss -ltnp` shows it), or move the cluster with local.addressPrefix in gardenos.yaml",
    }),
  },
  {
    // The client's side (Patroni): the TLS alert etcd sent back. Fatal: a certificate does not heal.
    id: 'etcd-refuses-client-cert',
    pattern:
      /SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|TLSV13_ALERT_CERTIFICATE_REQUIRED|alert bad certificate|alert unknown ca|alert certificate required/i,
    fatal: true,
    explain: () => ({
      summary: 'etcd refuses its client certificate (not signed by the cluster CA, or expired)',
      fix: "the member's certificate must come from the cluster's CA: delete the member's tls/server.crt and server.key and run `gardenos local up`, which issues them again from pki/ca.crt (then restart the member)",
    }),
  },
  {
    // etcd's side (capnslog or zap JSON): evidence about a client, not a reason etcd cannot start.
    id: 'etcd-rejected-client',
    pattern: /rejected connection from "([^"]+)" \(error "([^"]+)"|"msg":"rejected connection".*?"remote-addr":"([^"]+)".*?"error":"([^"]+)"/,
    fatal: false,
    explain: (m) => ({
      summary: `rejects a TLS client at ${m[1] ?? m[3]}: ${m[2] ?? m[4]}`,
      fix: 'every client of etcd (Patroni, the router, GardenOS) needs a certificate from the cluster CA (pki/ca.crt); `gardenos local doctor` names the member whose certificate is refused',
    }),
  },
  {
    id: 'server-cert-untrusted',
    pattern: /CERTIFICATE_VERIFY_FAILED|certificate verify failed/,
    fatal: true,
    explain: () => ({
      summary: "does not trust the server's certificate (it is not signed by the cluster CA it was given)",
      fix: 'every certificate and the cacert in patroni.yml must come from the same cluster CA (pki/ca.crt): `gardenos local up` rewrites the files and issues missing certificates',
    }),
  },
  {
    id: 'disk-full',
    pattern: /No space left on device/,
    fatal: true,
    explain: () => ({ summary: 'ran out of disk space', fix: 'free space on the file system of the state directory (`df -h`), then `gardenos local up`' }),
  },
  {
    id: 'stale-dcs-state',
    pattern: /waiting for leader to bootstrap/,
    fatal: false,
    explain: () => ({
      summary: 'Patroni waits for a leader of an earlier cluster (etcd holds its initialize key, no data here)',
      fix: '`gardenos local dcs clean` (refuses on a live cluster, backs up first), then `gardenos local up`',
    }),
  },
  {
    id: 'etcd-unreachable',
    pattern: /Failed to get list of machines from (\S+?):? (.+)|(?:failed to connect to|could not connect to) etcd/i,
    fatal: false,
    explain: (m) => ({
      summary: `cannot reach etcd${m[1] ? ` at ${m[1]}: ${m[2]}` : ''}`,
      fix: 'start etcd (`gardenos local up`); `gardenos local status` shows each etcd member',
    }),
  },
];

/** Lines that report an error in any of the daemons' log formats, for showing verbatim when no rule knows them. */
const ERROR_LINE = /\b(?:ERROR|FATAL|PANIC|CRITICAL)\b|"level":"(?:error|fatal|panic)"|\[ALERT\]|Traceback|\w+Error:/;

export function errorLines(lines: readonly string[], n = 5): string[] {
  return lines.filter((l) => ERROR_LINE.test(l)).slice(-n);
}

/** Every known cause in `lines`, one finding per cause (the newest evidence kept). */
export function findCauses(process: string, lines: readonly string[]): LogCause[] {
  const found = new Map<string, LogCause>();
  for (const line of lines) {
    for (const rule of RULES) {
      const m = rule.pattern.exec(line);
      if (!m) continue;
      const explained = rule.explain(m, process);
      const key = `${rule.id}\0${explained.summary}`;
      const prev = found.get(key);
      const evidence = [...(prev?.evidence ?? []), line.trim()].slice(-3);
      found.delete(key); // re-inserted: the most recent cause ends up last
      found.set(key, { id: rule.id, process, fatal: rule.fatal, evidence, ...explained });
      break;
    }
  }
  return [...found.values()];
}

/** The same cause seen in several processes' logs, once, with who shows it (the first one's evidence). */
export function groupCauses(causes: readonly LogCause[]): { processes: string[]; cause: LogCause }[] {
  const groups = new Map<string, { processes: string[]; cause: LogCause }>();
  for (const c of causes) {
    const key = `${c.id}\0${c.fix}`;
    const g = groups.get(key);
    if (g) g.processes.push(c.process);
    else groups.set(key, { processes: [c.process], cause: c });
  }
  return [...groups.values()];
}

/** The marker the supervisor writes into a log before each start: lines after the last one are "since the last start". */
export const START_MARKER = '--- gardenos: started ';

export function sinceLastStart(lines: readonly string[]): string[] {
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.startsWith(START_MARKER)) return lines.slice(i + 1);
  return [...lines];
}

/**
 * When a log line was written: PostgreSQL's lines carry their zone ("… UTC"); Patroni's
 * (Python's asctime) are local time; etcd's are JSON with an ISO time; the start marker has one.
 * Undefined for continuation lines without a time.
 */
export function logLineTime(line: string): number | undefined {
  const iso = /^\{.*"ts":"([^"]+)"/.exec(line) ?? (line.startsWith(START_MARKER) ? / at (\S+) ---$/.exec(line) : null);
  if (iso) return Date.parse(iso[1]!) || undefined;
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:[.,](\d+))?(?: (UTC|GMT))?/.exec(line);
  if (!m) return undefined;
  // The fraction counts: a line written 0.9 s into the second a command began is after its start, not before it.
  const ms = (m[3] ?? '0').padEnd(3, '0').slice(0, 3);
  const t = Date.parse(`${m[1]}T${m[2]}.${ms}${m[4] ? 'Z' : ''}`);
  return Number.isNaN(t) ? undefined : t;
}

/** The lines written within the window: an old rejected connection is history, not a finding. */
export function recentLines(lines: string[], windowMs: number, now = Date.now()): string[] {
  return lines.filter((l) => {
    const t = logLineTime(l);
    return t !== undefined && now - t <= windowMs;
  });
}

/** The lines written at or after `t` (ms); a line without a time goes with the line before it (a traceback's). */
export function linesSince(lines: readonly string[], t: number): string[] {
  let keep = false;
  return lines.filter((l) => {
    const at = logLineTime(l);
    if (at !== undefined) keep = at >= t;
    return keep;
  });
}
