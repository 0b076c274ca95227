#!/usr/bin/env bash
# Builds SeaweedFS's `weed` — the S3-compatible object store the tests run as the backup repository's S3 — from its
# Go module (github.com/seaweedfs/seaweedfs, at the pseudo-version the Go module proxy serves; it publishes no tagged
# module versions) with the plain Go toolchain, into a per-machine cache keyed by that version and the build flags.
# A second run finds it and does nothing. MinIO is not used: its licence (AGPL) and its archived community edition.
#   scripts/build-seaweedfs.sh            build (or reuse) and print the binary's path
#   GARDENOS_KUBE_CACHE=/dir ...          the cache (shared with build-kube.sh; default /var/cache/gardenos-test/kube)
set -euo pipefail
version=v0.0.0-20261109003541-7506e5f91cd6
if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && PATH="/usr/local/go/bin:$PATH" || {
    echo "build-seaweedfs: the Go toolchain (go >= 1.24) is needed to build SeaweedFS; install Debian's golang-go or Go from go.dev" >&2
    exit 1
  }
fi
flags="CGO_ENABLED=0 -trimpath -ldflags=-s -w"
key="$(echo "$version $flags" | sha256sum | cut -c1-12)"
default_cache=/var/cache/gardenos-test/kube
[ -w /var/cache ] || default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/gardenos-test/kube"
out="${GARDENOS_KUBE_CACHE:-$default_cache}/seaweedfs-$key"
if [ ! -f "$out/.complete" ]; then
  mkdir -p "$out"
  start=$(date +%s)
  echo "build-seaweedfs: building SeaweedFS $version into $out (a fresh machine takes about 5 minutes)" >&2
  # go mod download: the module's zip, checked against the checksum database; built in its own module, its
  # dependencies checked against its go.sum.
  src="$( (cd / && go mod download -json "github.com/seaweedfs/seaweedfs@$version") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src" ] || { echo "build-seaweedfs: go mod download gave no directory for seaweedfs $version" >&2; exit 1; }
  ( cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$out/weed" ./weed )
  "$out/weed" version >/dev/null
  echo "build-seaweedfs: built in $(( $(date +%s) - start )) s" >&2
  touch "$out/.complete"
fi
echo "$out/weed"
