#!/usr/bin/env bash
# Installs what GardenOS's local cluster and its tests need on Debian 12 or 13:
# etcd, Patroni >= 4, PostgreSQL, HAProxy, PgBouncer (the optional pooler), pgBackRest (backups), OpenSSH (the `gardenos up` tests run
# real SSH servers in network namespaces) and mmdebstrap (the fresh-root test),
# then checks each code path the daemons take at run time, on this machine.
#
# Debian 12 ships two packages too old for GardenOS, and Debian 13 has both:
# - Patroni 3.0.2, whose old leader can take the leader key back after a freeze or
#   partition (fixed upstream in 3.0.3). Debian 13's patroni 4.0.x is architecture `all`;
#   it comes with its pure-Python dependencies python3-ydiff and python3-cdiff.
# - etcd 3.4.23, which lacks the watch progress requests Kubernetes 1.34's API server
#   needs (RequestWatchProgress: etcd >= 3.5.13 or 3.4.31): without them every watch
#   that starts from "now" fails with 500. Debian 13's etcd-server/etcd-client 3.5.16 are
#   static Go programs needing only libc6 >= 2.34 (Debian 12 has 2.36).
# On Debian 12 this script takes just those from Debian 13, through a private, temporary
# apt list — nothing is added to /etc/apt — and everything else from Debian 12.
#
# Only missing packages are installed; run as root or with sudo. Package scripts
# that would start the distribution's own services are fine: GardenOS's members
# use their own loopback addresses (127.0.0.11 and up), not 127.0.0.1.
set -euo pipefail

say() { echo "install-deps: $*"; }
die() { echo "install-deps: $*" >&2; exit 1; }

[ -r /etc/os-release ] || die "cannot read /etc/os-release: GardenOS's set-up supports Debian 12 (bookworm) and 13 (trixie)"
. /etc/os-release
case "${VERSION_CODENAME:-}" in
  bookworm) pg=15; newer_from=trixie ;;
  trixie) pg=17; newer_from= ;;
  *) die "${PRETTY_NAME:-this system} is not supported: set-up is proven on Debian 12 (bookworm) and 13 (trixie)" ;;
esac

SUDO=""
tmp=""
tls=""
cleanup() { [ -z "$tmp" ] || $SUDO rm -rf "$tmp"; [ -z "$tls" ] || rm -rf "$tls"; }
trap cleanup EXIT
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root, or install sudo"
  SUDO="sudo"
fi

# --no-install-recommends, so every module a daemon imports at run time is named here. python3-idna:
# python-etcd switches urllib3 to pyOpenSSL where python3-openssl is installed, and that path imports
# idna, which nothing depends on. The other Recommends of these packages were checked (Debian 12 and
# 13): patroni → iproute2 (listed), python3-urllib3 → ca-certificates (trust store data, not imported;
# every TLS connection here uses the cluster CA), postgresql → sysstat, e2fsprogs, logrotate (tools,
# not imported); pgbackrest recommends nothing.
packages=(etcd-server etcd-client python3-etcd python3-idna python3-psycopg2 "postgresql-$pg" haproxy pgbouncer pgbackrest
  openssh-server openssh-client iproute2 openssl mmdebstrap)
# --tests: also what the real Kubernetes node in the tests runs on (README, "Testing"): Debian's containerd,
# runc and CNI plugins, and umoci, catatonit and busybox-static, from which scripts/build-images.sh makes
# the images. Not needed to run GardenOS; on a systemd host, installing containerd also starts Debian's
# containerd service, which the tests leave alone (they run their own, on their own socket). Of their
# Recommends only runc's criu exists (checkpoint/restore, never run by `runc create/start`); etcd 3.5.16 from
# Debian 13 recommends nothing. Also Prometheus (`local up --with-monitoring`, and promtool for the alert
# rules' tests) with the exporters and Alertmanager it runs beside the cluster: Go programs that load no
# module at run time; of their Recommends, node-exporter's dbus and extra collectors are for collectors GardenOS
# does not enable. On a systemd host these packages start Debian's own daemons on their default ports (9090,
# 9093, 9100, 9187), so the tests give theirs other ports (and `--with-monitoring` users either stop those
# services or set monitoring's ports). And headless Chromium (chromium-headless-shell; DejaVu for its text), in
# which the dashboard's test drives the page; chromium-common's Recommends (upower, udev, libgl1-mesa-dri,
# fonts-liberation, notification-daemon, system-config-printer) are desktop services and GPU drivers the
# headless shell does not load with --disable-gpu — DejaVu stands for fonts-liberation. And systemd-nspawn
# (systemd-container), which boots the hosts of the systemd test (test/helpers/systemd-hosts.ts) with systemd
# as their PID 1; its Recommends, libnss-mymachines, resolves container names through machined, which that
# test does not use (it reaches each host by address).
tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    *) die "unknown option $arg (usage: install-deps.sh [--tests])" ;;
  esac
done
[ "$tests" -eq 0 ] || packages+=(containerd runc containernetworking-plugins umoci catatonit busybox-static prometheus
  prometheus-postgres-exporter prometheus-node-exporter prometheus-alertmanager chromium-headless-shell fonts-dejavu-core
  systemd-container)

installed() { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
# version_at_least VERSION MINIMUM: Debian's own version comparison.
version_at_least() { [ -n "$1" ] && dpkg --compare-versions "$1" ge "$2"; }
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
ETCD_MIN=3.5.13
missing=()
for p in "${packages[@]}"; do
  case "$p" in etcd-server | etcd-client) version_at_least "$(pkg_version "$p")" "$ETCD_MIN" || missing+=("$p") ;; *) installed "$p" || missing+=("$p") ;; esac
done
version_at_least "$(pkg_version patroni)" 4 || missing+=(patroni)
# What Debian 12 takes from Debian 13 (above), with the dependencies that must come along.
newer=()
if [ -n "$newer_from" ]; then
  for p in "${missing[@]}"; do
    case "$p" in patroni) newer+=(patroni python3-ydiff python3-cdiff) ;; etcd-server | etcd-client) newer+=("$p") ;; esac
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq
  apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"; }
  others=()
  for p in "${missing[@]}"; do [[ " ${newer[*]} " == *" $p "* ]] || others+=("$p"); done
  [ ${#others[@]} -eq 0 ] || apt_install "${others[@]}"
  if [ ${#newer[@]} -gt 0 ]; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$newer_from" >"$tmp/$newer_from.sources"
    apt_from=(-o "Dir::Etc::SourceList=$tmp/$newer_from.sources" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
    say "fetching ${newer[*]} from Debian ($newer_from)"
    $SUDO apt-get "${apt_from[@]}" update -qq
    (cd "$tmp/debs" && $SUDO apt-get "${apt_from[@]}" download -qq "${newer[@]}")
    apt_install "$tmp"/debs/*.deb
  fi
else
  say "all Debian packages present"
fi

# The self-check: each run-time code path, for real, here. A failure names the package.
fail=0
check() { # check WHAT PACKAGE COMMAND...
  local what=$1 pkg=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    say "ok   $what: $(printf '%s' "$out" | head -n1)"
  else
    fail=1
    echo "install-deps: FAIL $what (Debian package $pkg):" >&2
    printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /' >&2
  fi
}

check "etcd >= $ETCD_MIN" etcd-server sh -c "v=\$(etcd --version | sed -n 's/^etcd Version: //p') && echo \"etcd \$v\" && dpkg --compare-versions \"\$v\" ge $ETCD_MIN"
check "etcdctl >= $ETCD_MIN" etcd-client sh -c "v=\$(etcdctl version | sed -n 's/^etcdctl version: //p') && echo \"etcdctl \$v\" && dpkg --compare-versions \"\$v\" ge $ETCD_MIN"
check "haproxy" haproxy haproxy -vv
check "pgbouncer (the pooler, pooler.enabled)" pgbouncer pgbouncer --version
check "pgbackrest (backups.enabled)" pgbackrest pgbackrest version
check "patroni >= 4" patroni sh -c 'v=$(patroni --version) && echo "$v" && [ "$(echo "$v" | sed "s/[^0-9.]//g" | cut -d. -f1)" -ge 4 ]'
for bin in postgres initdb pg_ctl pg_basebackup pg_rewind pg_dump pg_dumpall pg_restore psql; do
  check "$bin" "postgresql-$pg" "/usr/lib/postgresql/$pg/bin/$bin" --version
done
if [ "$tests" -eq 1 ]; then
  check "containerd (the test node)" containerd containerd --version
  check "runc" runc runc --version
  check "CNI bridge, host-local and portmap plugins" containernetworking-plugins sh -c 'for p in bridge host-local portmap loopback; do [ -x /usr/lib/cni/$p ] || exit 1; done; echo /usr/lib/cni'
  check "umoci (builds the test images)" umoci umoci --version
  check "catatonit (the pause image's process)" catatonit catatonit --version
  check "prometheus and promtool (monitoring)" prometheus sh -c 'prometheus --version 2>&1 | head -n1 && promtool --version >/dev/null 2>&1'
  check "postgres-exporter" prometheus-postgres-exporter sh -c 'prometheus-postgres-exporter --version 2>&1 | head -n1'
  check "node-exporter" prometheus-node-exporter sh -c 'prometheus-node-exporter --version 2>&1 | head -n1'
  check "alertmanager" prometheus-alertmanager sh -c 'prometheus-alertmanager --version 2>&1 | head -n1'
  check "headless Chromium (the dashboard's test)" chromium-headless-shell sh -c 'chromium-headless-shell --version 2>&1 | head -n1'
  check "busybox, static (the test workload image)" busybox-static sh -c 'ldd "$(command -v busybox)" 2>&1 | grep -q "not a dynamic executable" && busybox | head -n1'
  check "systemd-nspawn (the systemd hosts' test)" systemd-container sh -c 'systemd-nspawn --version | head -n1'
fi
check "psycopg2 (Patroni's PostgreSQL driver)" python3-psycopg2 /usr/bin/python3 -c 'import psycopg2; print("psycopg2", psycopg2.__version__)'

# Patroni's etcd3 client is urllib3 over TLS with a client certificate, after the imports
# Patroni makes (python-etcd switches urllib3 to pyOpenSSL where python3-openssl is present,
# and that path needs idna): make one real request the same way, to a throwaway mutual-TLS
# listener on loopback.
tls=$(mktemp -d)
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$tls/key.pem" -out "$tls/cert.pem" >/dev/null 2>&1; then
  check "Patroni's etcd3 TLS client path (urllib3, client certificate)" "python3-idna python3-urllib3" /usr/bin/python3 - "$tls" <<'PY'
import http.server, ssl, sys, threading
import patroni.dcs.etcd3  # noqa: F401 -- the imports Patroni's etcd3 client makes, with their side effects
import urllib3
d = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = b'{"etcdserver":"selfcheck"}'
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(('127.0.0.1', 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f'{d}/cert.pem', f'{d}/key.pem')
ctx.load_verify_locations(f'{d}/cert.pem')
ctx.verify_mode = ssl.CERT_REQUIRED
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
threading.Thread(target=srv.handle_request, daemon=True).start()
pool = urllib3.PoolManager(cert_reqs='CERT_REQUIRED', ca_certs=f'{d}/cert.pem', cert_file=f'{d}/cert.pem', key_file=f'{d}/key.pem')
r = pool.request('POST', f'https://127.0.0.1:{srv.server_port}/v3/maintenance/status', body=b'{}', timeout=5, retries=False)
assert r.status == 200, r.status
print('urllib3', urllib3.__version__, 'mutual TLS request answered', r.status)
PY
else
  fail=1
  echo "install-deps: FAIL openssl could not make a test certificate (Debian package openssl)" >&2
fi

[ "$fail" -eq 0 ] || die "the self-check failed: install the packages named above (apt-get install <package>), then run this script again"
say "self-check passed (Debian ${VERSION_ID:-?} ${VERSION_CODENAME}, PostgreSQL $pg)"
