// Starting and restarting services on a host through one interface: systemd
// on real hosts; on hosts without systemd (the test hosts in network
// namespaces) a small runner script that GardenOS installs. Either way the
// daemons and the files they read are the real ones.
import { shellQuote } from './ssh.ts';

export type ServiceName = 'etcd' | 'haproxy' | 'k3s';

/** How a host starts, restarts and stops a service: the shell command, run over SSH by the caller (often joined with others into one command). */
export interface ServiceManager {
  kind: 'systemd' | 'runner';
  command(verb: 'start' | 'restart' | 'stop', name: ServiceName): string;
}

/** systemd unit names of GardenOS's services. */
export const UNITS: Record<ServiceName, string> = { etcd: 'gardenos-etcd', haproxy: 'haproxy', k3s: 'k3s' };

/**
 * Debian's etcd-server enables its own unit, a plain-HTTP etcd on localhost with a cluster of its own:
 * `up` stops and masks it on etcd hosts (noting so in DISTRO_ETCD_MASKED), `reset` unmasks it again.
 */
export const DISTRO_ETCD_UNIT = 'etcd.service';

/** GardenOS's state on a host (`reset` removes it whole). */
export const STATE_DIR = '/var/lib/gardenos';
export const DISTRO_ETCD_MASKED = `${STATE_DIR}/distro-etcd-masked`;
export const RUNNER_PATH = `${STATE_DIR}/bin/gardenos-svc`;
export const RUNNER_DIR = `${STATE_DIR}/svc`;

/** The runner: start (detached, logged), stop (TERM, then KILL), restart, is-active; a zombie is not alive. */
export const RUNNER_SCRIPT = `#!/bin/sh
# gardenos-svc: a minimal service runner for hosts without systemd. Installed by gardenos up.
set -eu
dir=${RUNNER_DIR}
verb=$1; name=$2
pidf=$dir/$name.pid; log=$dir/$name.log; def=$dir/$name.cmd
alive() {
  [ -f "$pidf" ] || return 1
  pid=$(cat "$pidf")
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
case "$verb" in
  start) alive && exit 0; setsid sh "$def" >>"$log" 2>&1 </dev/null & echo $! >"$pidf" ;;
  stop) alive || exit 0; kill "$(cat "$pidf")"; i=0; while alive && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; alive && kill -9 "$(cat "$pidf")"; rm -f "$pidf" ;;
  restart) "$0" stop "$name"; "$0" start "$name" ;;
  is-active) alive ;;
  *) echo "usage: $0 start|stop|restart|is-active NAME" >&2; exit 2 ;;
esac
`;

/** What the runner runs for each service: the same commands the systemd units run. */
export const RUNNER_COMMANDS: Record<Exclude<ServiceName, 'k3s'>, string> = {
  etcd: 'exec /usr/bin/etcd --config-file /etc/gardenos/etcd/etcd.yml\n',
  haproxy: 'set -a; . /etc/gardenos/haproxy.env; set +a\nexec /usr/sbin/haproxy -f /etc/haproxy/haproxy.cfg -db\n',
};

export const systemdManager: ServiceManager = {
  kind: 'systemd',
  // --no-block: etcd's unit is Type=notify and would wait for a quorum the other members have not joined yet;
  // GardenOS waits for health itself, with a deadline.
  command(verb, name) {
    const unit = UNITS[name];
    if (verb === 'start') return `systemctl daemon-reload && systemctl enable ${unit} && systemctl start --no-block ${unit}`;
    if (verb === 'restart') return `systemctl daemon-reload && systemctl restart --no-block ${unit}`;
    return `systemctl stop ${unit}`;
  },
};

export const runnerManager: ServiceManager = {
  kind: 'runner',
  command: (verb, name) => `${RUNNER_PATH} ${verb} ${shellQuote(name)}`,
};
