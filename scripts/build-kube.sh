#!/usr/bin/env bash
# Builds Kubernetes' control plane and kubelet from its published Go modules (test/kube/go.mod), with the plain Go
# toolchain, into a per-machine cache keyed by test/kube/go.sum. A second run with the same go.sum does nothing.
# Beside them, from their own modules at the releases src/config/version.ts names: Rancher's local-path
# provisioner (the StorageClass GardenOS renders when K3s's local-storage is off) and Traefik (the ingress
# controller GardenOS installs); and cert-manager's CRDs (crds/), which the rendered ACME objects are checked against.
# And CoreDNS, the cluster DNS K3s installs on its servers (the test nodes run it as K3s would), cached apart
# (coredns-<version>/) so that a new CoreDNS does not rebuild Kubernetes; linked into the bin directory.
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
traefik="$(sed -n "s/^export const TRAEFIK_VERSION = '\(v[0-9.]*\)';$/\1/p" "$here/src/config/version.ts")"
[ -n "$traefik" ] || { echo "build-kube: no TRAEFIK_VERSION in src/config/version.ts" >&2; exit 1; }
cert_manager="$(sed -n "s/^export const CERT_MANAGER_VERSION = '\(v[0-9.]*\)';$/\1/p" "$here/src/config/version.ts")"
[ -n "$cert_manager" ] || { echo "build-kube: no CERT_MANAGER_VERSION in src/config/version.ts" >&2; exit 1; }
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
ldflags="$ldflags -X $pkg.buildDate=1970-01-01T00:00:00Z"
# The key: what decides the binaries (the modules and how they are built), not this file's comments.
key="$( (cat "$mod/go.mod" "$mod/go.sum"; echo "$ldflags ${commands[*]} CGO_ENABLED=0 -trimpath local-path-provisioner@$local_path traefik@$traefik cert-manager@$cert_manager") | sha256sum | cut -c1-12)"
default_cache=/var/cache/gardenos-test/kube
[ -w /var/cache ] || default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/gardenos-test/kube"
cache="${GARDENOS_KUBE_CACHE:-$default_cache}"
out="$cache/$version-$key"

# CoreDNS: a release of the series K3s v1.34 bundles. Its go.mod has no replaces: built in its own module as
# go mod download fetched and checksum-verified it, its dependencies checked against its go.sum.
coredns_version=v1.12.4
coredns_dir="$cache/coredns-$coredns_version"
if [ ! -f "$coredns_dir/.complete" ]; then
  mkdir -p "$coredns_dir"
  start=$(date +%s)
  echo "build-kube: building CoreDNS $coredns_version into $coredns_dir" >&2
  coredns_src="$( (cd / && go mod download -json "github.com/coredns/coredns@$coredns_version") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$coredns_src" ] || { echo "build-kube: go mod download gave no directory for coredns $coredns_version" >&2; exit 1; }
  ( cd "$coredns_src" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$coredns_dir/coredns" . )
  "$coredns_dir/coredns" -version >/dev/null
  echo "build-kube: CoreDNS built in $(( $(date +%s) - start )) s" >&2
  touch "$coredns_dir/.complete"
fi
link_coredns() { ln -sfn "$coredns_dir/coredns" "$out/coredns"; }

if [ -f "$out/.complete" ]; then link_coredns; echo "$out"; exit 0; fi
mkdir -p "$out"
# Kubernetes' own release builds are static, pure-Go binaries; so are these.
start=$(date +%s)
echo "build-kube: building Kubernetes $version (${commands[*]}) into $out — a fresh machine takes several minutes" >&2
( cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/" \
    $(printf 'k8s.io/kubernetes/cmd/%s ' "${commands[@]}") )
# go install builds a module's main package with the module's own go.mod and go.sum (checked against the checksum database).
CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags '-s -w' "github.com/rancher/local-path-provisioner@$local_path"
# go mod download: the module's zip, checked against the checksum database; prints where it is unpacked.
module_dir() { (cd / && go mod download -json "$1") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }
# Traefik's go.mod replaces modules, which go install refuses: build in its own module, as downloaded and
# checksum-verified by go mod download (its dependencies are checked against its go.sum).
traefik_src="$(module_dir "github.com/traefik/traefik/v3@$traefik")"
[ -d "$traefik_src" ] || { echo "build-kube: go mod download gave no directory for traefik $traefik" >&2; exit 1; }
( cd "$traefik_src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${traefik#v}" -o "$out/traefik" ./cmd/traefik )
cm_src="$(module_dir "github.com/cert-manager/cert-manager@$cert_manager")"
mkdir -p "$out/crds"
cp "$cm_src"/deploy/crds/cert-manager.io_*.yaml "$out/crds/"
for c in "${commands[@]}"; do "$out/$c" --version >/dev/null; done
"$out/local-path-provisioner" --version >/dev/null
"$out/traefik" version >/dev/null
echo "build-kube: built in $(( $(date +%s) - start )) s" >&2
link_coredns
touch "$out/.complete"
# Builds of other keys are of no further use here.
for old in "$cache"/*/; do [ "${old%/}" = "$out" ] || [ "${old%/}" = "$coredns_dir" ] || rm -rf "${old%/}"; done
echo "$out"
