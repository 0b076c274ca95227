#!/usr/bin/env bash
# The router's image without a Docker engine: what the Dockerfile builds — Node 24, the compiled
# JavaScript, production dependencies only, user 10001, `node dist/cli/main.js router --config
# /etc/gardenos/router.yml` — as an OCI archive made with umoci. Node is the npm registry's Node 24
# (the project's own dev dependency) with the shared libraries it links (from this Debian), so the
# image holds nothing else. Cached per machine under a key of the sources, the lockfile and Node.
# Prints the archive's path (tagged "1").
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
node_bin="$(readlink -f node_modules/.bin/node)"
[ -x "$node_bin" ] || { echo "build-router-image: run npm ci first (Node 24 comes from node_modules)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "build-router-image: umoci is missing: apt-get install -y umoci" >&2; exit 1; }
default_cache=/var/cache/gardenos-test/router-image
[ -w /var/cache ] || default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/gardenos-test/router-image"
cache="${GARDENOS_IMAGE_CACHE:-$default_cache}"
key="$( (find src -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum package.json package-lock.json tsconfig.json tsconfig.build.json "$node_bin" "$0") | sha256sum | cut -c1-12)"
out="$cache/$key"
if [ ! -f "$out/.complete" ]; then
  mkdir -p "$out"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  npm run --silent build >&2
  app="$work/rootfs/app"
  mkdir -p "$app" "$work/rootfs/usr/local/bin" "$work/rootfs/tmp"
  chmod 1777 "$work/rootfs/tmp"
  cp package.json package-lock.json "$app/"
  (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -f "$app/package-lock.json"
  cp -r dist "$app/dist"
  cp "$node_bin" "$work/rootfs/usr/local/bin/node"
  # Node's shared libraries, at the paths its loader looks in.
  for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do mkdir -p "$work/rootfs$(dirname "$lib")"; cp -L "$lib" "$work/rootfs$lib"; done
  layout="$work/layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:1"
  umoci unpack --image "$layout:1" "$work/bundle" >/dev/null
  cp -a "$work/rootfs/." "$work/bundle/rootfs/"
  umoci repack --image "$layout:1" "$work/bundle"
  umoci config --image "$layout:1" --author gardenos --config.user 10001 --config.workingdir /app \
    --config.env NODE_ENV=production --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.exposedports 8405/tcp \
    --config.entrypoint node --config.entrypoint --max-semi-space-size=1 --config.entrypoint dist/cli/main.js \
    --config.cmd router --config.cmd --config --config.cmd /etc/gardenos/router.yml
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$out/router.tar" .
  touch "$out/.complete"
  for old in "$cache"/*/; do [ "${old%/}" = "$out" ] || rm -rf "${old%/}"; done
fi
echo "$out/router.tar"
