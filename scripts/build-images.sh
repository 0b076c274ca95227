#!/usr/bin/env bash
# Builds the OCI images GardenOS's tests run on a real node, from Debian's binaries, with umoci
# (no registry is reachable, and no Docker engine runs): each an OCI archive tagged "1", cached per
# machine under a key of what goes into it. Prints a JSON object {name: archive}.
#   pause  catatonit -P: the pod sandbox's process (what registry.k8s.io/pause does)
#   tools  busybox (static): sh, wget, nc, sleep — a small workload for tests, and the local-path
#          provisioner's helper pods (storage.helperImage)
#   local-path-provisioner, traefik  with a directory holding those binaries as the argument
#          (scripts/build-kube.sh builds them from their Go modules): Rancher's provisioner, what
#          storage.provisionerImage names, and the ingress controller, what ingress.image names
#   coredns  the same way: the cluster DNS K3s runs (test/helpers/coredns.ts deploys it as K3s does)
#   prometheus, alertmanager, node-exporter  Debian's binaries (its prometheus* packages, as the local
#          profile runs them) with the C library they link: what monitoring.images names (quay.io's
#          images cannot be pulled here)
# usage: build-images.sh [KUBE_BIN_DIR]
set -euo pipefail
provisioner="${1:+$1/local-path-provisioner}"
traefik="${1:+$1/traefik}"
coredns="${1:+$1/coredns}"
for b in $provisioner $traefik $coredns; do
  [ -x "$b" ] || { echo "build-images: $b is missing: run scripts/build-kube.sh" >&2; exit 1; }
done
for c in umoci catatonit busybox tar sha256sum prometheus prometheus-alertmanager prometheus-node-exporter; do
  command -v "$c" >/dev/null || {
    echo "build-images: $c is missing: apt-get install -y umoci catatonit busybox-static prometheus prometheus-alertmanager prometheus-node-exporter" >&2
    exit 1
  }
done
monitoring=(prometheus prometheus-alertmanager prometheus-node-exporter)
# What the monitoring binaries load: the C library and its loader (they are Go programs, nothing else).
libs=$(for m in "${monitoring[@]}"; do ldd "$(command -v "$m")"; done | awk '$1 ~ /^\// {print $1} $3 ~ /^\// {print $3}' | sort -u)
default_cache=/var/cache/gardenos-test/images
[ -w /var/cache ] || default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/gardenos-test/images"
cache="${GARDENOS_IMAGE_CACHE:-$default_cache}"
key="$( (sha256sum "$(command -v catatonit)" "$(command -v busybox)" ${provisioner:+"$provisioner" "$traefik" "$coredns"}; for m in "${monitoring[@]}"; do sha256sum "$(command -v "$m")"; done; sha256sum $libs; find /usr/share/prometheus/alertmanager -type f -exec sha256sum {} +; sed -n '/^build()/,$p' "$0") | sha256sum | cut -c1-12)"
out="$cache/$key"

build() { # build NAME ENTRYPOINT... : a one-layer image from the files staged in $work/NAME
  local name=$1
  local layout="$work/$name-layout"
  shift
  umoci init --layout "$layout"
  umoci new --image "$layout:1"
  umoci unpack --rootless --image "$layout:1" "$work/$name-bundle" >/dev/null
  cp -a "$work/$name/." "$work/$name-bundle/rootfs/"
  umoci repack --image "$layout:1" "$work/$name-bundle"
  local args=()
  for a in "$@"; do args+=(--config.entrypoint "$a"); done
  umoci config --image "$layout:1" --author gardenos --config.user 65534:65534 "${args[@]}"
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$out/$name.tar" .
}

if [ ! -f "$out/.complete" ]; then
  mkdir -p "$out"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/pause" "$work/tools/bin" "$work/tools/tmp"
  cp "$(command -v catatonit)" "$work/pause/pause"
  cp "$(command -v busybox)" "$work/tools/bin/busybox"
  for t in sh wget nc sleep cat echo ls date hostname mkdir rm chmod; do ln -s busybox "$work/tools/bin/$t"; done
  chmod 1777 "$work/tools/tmp"
  build pause /pause -P
  build tools /bin/sh
  if [ -n "$provisioner" ]; then
    mkdir -p "$work/local-path-provisioner/usr/bin" "$work/local-path-provisioner/tmp"
    chmod 1777 "$work/local-path-provisioner/tmp"
    cp "$provisioner" "$work/local-path-provisioner/usr/bin/local-path-provisioner"
    build local-path-provisioner /usr/bin/local-path-provisioner
    mkdir -p "$work/traefik/usr/bin" "$work/traefik/tmp"
    chmod 1777 "$work/traefik/tmp"
    cp "$traefik" "$work/traefik/usr/bin/traefik"
    build traefik /usr/bin/traefik
    mkdir -p "$work/coredns/usr/bin"
    cp -L "$coredns" "$work/coredns/usr/bin/coredns"
    build coredns /usr/bin/coredns
  fi
  for m in "${monitoring[@]}"; do
    name=${m#prometheus-}
    mkdir -p "$work/$name/usr/bin" "$work/$name/tmp"
    chmod 1777 "$work/$name/tmp"
    cp "$(command -v "$m")" "$work/$name/usr/bin/$m"
    for l in $libs; do cp --parents -L "$l" "$work/$name/"; done
    # Debian's Alertmanager reads its default notification templates from its package's directory.
    if [ "$name" = alertmanager ]; then
      mkdir -p "$work/$name/usr/share/prometheus"
      cp -rL /usr/share/prometheus/alertmanager "$work/$name/usr/share/prometheus/"
    fi
    build "$name" "/usr/bin/$m"
  done
  touch "$out/.complete"
  for old in "$cache"/*/; do [ "${old%/}" = "$out" ] || rm -rf "${old%/}"; done
fi
printf '{"pause":"%s","tools":"%s","prometheus":"%s","alertmanager":"%s","node-exporter":"%s"%s}\n' "$out/pause.tar" "$out/tools.tar" \
  "$out/prometheus.tar" "$out/alertmanager.tar" "$out/node-exporter.tar" "${provisioner:+,\"local-path-provisioner\":\"$out/local-path-provisioner.tar\",\"traefik\":\"$out/traefik.tar\",\"coredns\":\"$out/coredns.tar\"}"
