// Starting and restarting services on a host through one interface: systemd
// on real hosts; on hosts without systemd (the test hosts in network
// namespaces) a small runner script that GardenOS installs. Either way the
// daemons and the files they read are the real ones.
import type { SshHost } from './ssh.ts';
import { shellQuote } from './ssh.ts';

export type ServiceName = 'etcd' | 'haproxy' | 'k3s';

export interface ServiceManager {
  kind: 'systemd' | 'runner';
  /** The shell command for a verb, so a caller can join it with others into one SSH command. */
  command(verb: 'start' | 'restart' | 'stop', name: ServiceName): string;
  isActive(name: ServiceName): Promise<boolean>;
  start(name: ServiceName): Promise<void>;
  restart(name: ServiceName): Promise<void>;
  stop(name: ServiceName): Promise<void>;
}

/** systemd unit names of GardenOS's services. */
const UNITS: Record<ServiceName, string> = { etcd: 'gardenos-etcd', haproxy: 'haproxy', k3s: 'k3s' };

export const RUNNER_PATH = '/var/lib/gardenos/bin/gardenos-svc';
export const RUNNER_DIR = '/var/lib/gardenos/svc';

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

function manager(host: SshHost, kind: ServiceManager['kind'], command: ServiceManager['command'], isActive: (name: ServiceName) => string): ServiceManager {
  const run = async (verb: 'start' | 'restart' | 'stop', name: ServiceName) => void (await host.must(`${verb === 'stop' ? 'stopping' : verb === 'start' ? 'starting' : 'restarting'} ${name}`, command(verb, name)));
  return {
    kind,
    command,
    isActive: async (name) => (await host.exec(isActive(name))).code === 0,
    start: (name) => run('start', name),
    restart: (name) => run('restart', name),
    stop: (name) => run('stop', name),
  };
}

export function systemdManager(host: SshHost): ServiceManager {
  // --no-block: etcd's unit is Type=notify and would wait for a quorum the other members have not joined yet;
  // GardenOS waits for health itself, with a deadline.
  const command = (verb: 'start' | 'restart' | 'stop', name: ServiceName) => {
    const unit = UNITS[name];
    if (verb === 'start') return `systemctl daemon-reload && systemctl enable ${unit} && systemctl start --no-block ${unit}`;
    if (verb === 'restart') return `systemctl daemon-reload && systemctl restart --no-block ${unit}`;
    return `systemctl stop ${unit}`;
  };
  return manager(host, 'systemd', command, (name) => `systemctl is-active --quiet ${UNITS[name]}`);
}

export function runnerManager(host: SshHost): ServiceManager {
  return manager(host, 'runner', (verb, name) => `${RUNNER_PATH} ${verb} ${shellQuote(name)}`, (name) => `${RUNNER_PATH} is-active ${shellQuote(name)}`);
}
