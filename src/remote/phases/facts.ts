// What is on each host, in one SSH command: OS, systemd or not, the versions
// of etcd, HAProxy and K3s, the clock, free disk, listening ports, restarts an
// earlier run still owes, the hash of every file GardenOS manages there, and
// which of its services run. Every later phase decides from these facts.

import { DISTRO_ETCD_UNIT, RUNNER_COMMANDS, RUNNER_DIR, RUNNER_PATH, runnerManager, systemdManager, UNITS, type ServiceName } from '../services.ts';
import { shellQuote } from '../ssh.ts';
import { gardenosDirs, PENDING_DIR, pool, type UpPhase } from '../context.ts';

export const facts: UpPhase = {
  name: 'facts',
  async run({ hosts, concurrency, config, report }) {
    await pool(hosts, concurrency, async (h) => {
      const managed = [...h.files.map((f) => f.path), RUNNER_PATH, ...Object.keys(RUNNER_COMMANDS).map((n) => `${RUNNER_DIR}/${n}.cmd`)];
      const script = [
        'echo "now=$(date +%s.%N)"',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, run on the host
        '. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"',
        '[ -d /run/systemd/system ] && echo systemd=1 || echo systemd=0',
        // The distribution's own etcd unit (Debian's etcd-server enables one: plain HTTP on localhost).
        `[ -d /run/systemd/system ] && systemctl cat ${DISTRO_ETCD_UNIT} >/dev/null 2>&1 && echo "distroEtcd=$(systemctl is-enabled ${DISTRO_ETCD_UNIT} 2>/dev/null)"; true`,
        'echo "etcd=$(etcd --version 2>/dev/null | head -1 | sed -n "s/^etcd Version: //p")"',
        'echo "haproxy=$(haproxy -v 2>/dev/null | head -1 | sed -n "s/^HAProxy version \\([^ ]*\\).*/\\1/p")"',
        'echo "k3s=$(k3s --version 2>/dev/null | head -1 | sed -n "s/^k3s version \\([^ ]*\\).*/\\1/p")"',
        `echo "free=$(df -Pk ${shellQuote(config.etcd.dataDir.replace(/\/[^/]*$/, '') || '/')} 2>/dev/null | awk 'NR==2 {print $4}')"`,
        'ss -ltnH 2>/dev/null | awk \'{print "listen=" $4}\'',
        `ls ${PENDING_DIR} 2>/dev/null | sed 's/^/pending=/'`,
        `for f in ${managed.map(shellQuote).join(' ')}; do [ -f "$f" ] && echo "hash=$(sha256sum "$f")"; done`,
        `for d in ${gardenosDirs(h.files).map(shellQuote).join(' ')}; do [ -d "$d" ] && echo "dirmode=$(stat -c %a "$d") $d"; done; true`,
        // Which of GardenOS's services run, by systemd or by the runner (only ours: a runner we did not install proves nothing).
        `for s in ${Object.entries(UNITS)
          .map(([n, u]) => `${n}:${u}`)
          .join(
            ' ',
          )}; do n=\${s%%:*}; u=\${s#*:}; if [ -d /run/systemd/system ]; then systemctl is-active --quiet "$u" && echo "active=$n"; elif [ -x ${RUNNER_PATH} ]; then ${RUNNER_PATH} is-active "$n" && echo "active=$n"; fi; done; true`,
      ].join('\n');
      const sentAt = Date.now();
      const out = await h.ssh.must('gathering facts', script);
      const answeredAt = Date.now();
      const kv = (k: string) =>
        out
          .split('\n')
          .filter((l) => l.startsWith(`${k}=`))
          .map((l) => l.slice(k.length + 1));
      const systemd = kv('systemd')[0] === '1';
      const hashes: Record<string, string> = {};
      for (const line of kv('hash')) {
        const [digest, ...file] = line.split(/\s+/);
        hashes[file.join(' ')] = digest!;
      }
      const running = kv('active');
      const active = { etcd: running.includes('etcd'), haproxy: running.includes('haproxy'), k3s: running.includes('k3s') };
      const v = (x: string | undefined) => (x ? x : null);
      const f = {
        os: kv('os')[0] ?? 'unknown',
        systemd,
        versions: { etcd: v(kv('etcd')[0]), haproxy: v(kv('haproxy')[0]), k3s: v(kv('k3s')[0]) },
        // The host's clock was read first thing, somewhere between sending and the answer.
        clockSkewS: Math.max(0, Math.abs(Number(kv('now')[0]) * 1000 - sentAt) - (answeredAt - sentAt)) / 1000,
        freeKiB: Number(kv('free')[0] ?? 0),
        listening: kv('listen'),
        hashes,
        active,
        pending: kv('pending').filter((x): x is ServiceName => x === 'etcd' || x === 'haproxy' || x === 'k3s'),
        distroEtcd: kv('distroEtcd')[0] ?? null,
        dirModes: Object.fromEntries(kv('dirmode').map((l) => [l.slice(l.indexOf(' ') + 1), l.slice(0, l.indexOf(' '))])),
      };
      h.known = { facts: f, services: systemd ? systemdManager : runnerManager };
      report({
        kind: 'step',
        step: 'facts',
        member: h.node.name,
        status: 'done',
        detail: `${f.os}; ${systemd ? 'systemd' : 'no systemd (runner)'}; etcd ${f.versions.etcd ?? 'missing'}, haproxy ${f.versions.haproxy ?? 'missing'}, k3s ${f.versions.k3s ?? 'not installed'}`,
      });
    });
    return undefined;
  },
};
