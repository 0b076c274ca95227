#!/usr/bin/env bash
# Installs what GardenOS's local cluster and tests need from Debian/Ubuntu:
# etcd, Patroni, PostgreSQL 15 and HAProxy, and OpenSSH (the `gardenos up` tests
# run real SSH servers in network namespaces). Only missing packages are
# installed; run as root or with sudo. Package scripts that would start the
# distribution's own services are fine: GardenOS's members use their own
# loopback addresses (127.0.0.11 and up), not 127.0.0.1.
set -euo pipefail

packages=(etcd-server etcd-client patroni python3-etcd postgresql-15 haproxy openssh-server openssh-client iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present (${packages[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root, or install sudo, to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
