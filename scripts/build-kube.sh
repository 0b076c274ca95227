#!/usr/bin/env bash
# Builds Kubernetes' control plane and kubelet from its published Go modules (test/kube/go.mod), with the plain Go
# toolchain, into a per-machine cache keyed by test/kube/go.sum. A second run with the same go.sum does nothing.
# Beside them, Rancher's local-path provisioner (the StorageClass GardenOS renders when K3s's local-storage is
# off) from its own module, at the release src/config/version.ts names.
#   scripts/build-kube.sh            build (or reuse) and print the bin directory
#   GARDENOS_KUBE_CACHE=/dir ...     where the binaries go (default /var/cache/gardenos-test/kube, else ~/.cache)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mod="$here/test/kube"
commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && PATH="/usr/local/go/bin:$PATH" || {
    echo "build-kube: the Go toolchain (go >= 1.24) is needed to build Kubernetes; install Debian's golang-go or Go from go.dev" >&2
    exit 1
  }
fi

version="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$mod/go.mod")"
[ -n "$version" ] || { echo "build-kube: no 'require k8s.io/kubernetes vX.Y.Z' line in $mod/go.mod" >&2; exit 1; }
minor="${version#v1.}"; minor="${minor%%.*}"
local_path="$(sed -n "s/^export const LOCAL_PATH_PROVISIONER_VERSION = '\(v[0-9.]*\)';$/\1/p" "$here/src/config/version.ts")"
[ -n "$local_path" ] || { echo "build-kube: no LOCAL_PATH_PROVISIONER_VERSION in src/config/version.ts" >&2; exit 1; }
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
ldflags="$ldflags -X $pkg.buildDate=1970-01-01T00:00:00Z"
# The key: what decides the binaries (the modules and how they are built), not this file's comments.
key="$( (cat "$mod/go.mod" "$mod/go.sum"; echo "$ldflags ${commands[*]} CGO_ENABLED=0 -trimpath local-path-provisioner@$local_path") | sha256sum | cut -c1-12)"
default_cache=/var/cache/gardenos-test/kube
[ -w /var/cache ] || default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/gardenos-test/kube"
cache="${GARDENOS_KUBE_CACHE:-$default_cache}"
out="$cache/$version-$key"

if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi
mkdir -p "$out"
# Kubernetes' own release builds are static, pure-Go binaries; so are these.
start=$(date +%s)
echo "build-kube: building Kubernetes $version (${commands[*]}) into $out — a fresh machine takes several minutes" >&2
( cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/" \
    $(printf 'k8s.io/kubernetes/cmd/%s ' "${commands[@]}") )
# go install builds a module's main package with the module's own go.mod and go.sum (checked against the checksum database).
CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags '-s -w' "github.com/rancher/local-path-provisioner@$local_path"
for c in "${commands[@]}"; do "$out/$c" --version >/dev/null; done
"$out/local-path-provisioner" --version >/dev/null
echo "build-kube: built in $(( $(date +%s) - start )) s" >&2
touch "$out/.complete"
# Builds of other keys are of no further use here.
for old in "$cache"/*/; do [ "${old%/}" = "$out" ] || rm -rf "${old%/}"; done
echo "$out"
