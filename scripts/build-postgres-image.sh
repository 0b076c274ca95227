#!/usr/bin/env bash
# The GardenOS PostgreSQL image without a container engine: images/postgres/install.sh — the
# Containerfile's recipe — run on a Debian 13 root made by mmdebstrap, packed as an OCI archive with
# umoci, with the Containerfile's user, environment and entrypoint. Cached per machine under a key
# of the recipe. Prints the archive's path (tagged "1").
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
recipe="$here/images/postgres"
for c in mmdebstrap umoci tar sha256sum; do
  command -v "$c" >/dev/null || { echo "build-postgres-image: $c is missing: apt-get install -y mmdebstrap umoci" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-postgres-image: needs root (mmdebstrap --mode=root keeps the image's owners)" >&2; exit 1; }
suite=trixie
pg_major=17
default_cache=/var/cache/gardenos-test/postgres-image
cache="${GARDENOS_IMAGE_CACHE:-$default_cache}"
key="$( (sha256sum "$recipe/install.sh" "$recipe/Containerfile" "$0"; echo "$suite $pg_major") | sha256sum | cut -c1-12)"
out="$cache/$key"
if [ ! -f "$out/.complete" ]; then
  mkdir -p "$out"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "build-postgres-image: Debian $suite + PostgreSQL $pg_major + Patroni (mmdebstrap)" >&2
  mmdebstrap --variant=minbase --mode=root --format=directory --quiet \
    --customize-hook="copy-in $recipe/install.sh /tmp" \
    --customize-hook="chroot \"\$1\" env PG_MAJOR=$pg_major sh /tmp/install.sh" \
    "$suite" "$work/rootfs" http://deb.debian.org/debian >&2
  layout="$work/layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:1"
  umoci unpack --image "$layout:1" "$work/bundle" >/dev/null
  rmdir "$work/bundle/rootfs"
  mv "$work/rootfs" "$work/bundle/rootfs"
  umoci repack --image "$layout:1" "$work/bundle"
  # As the Containerfile declares them.
  umoci config --image "$layout:1" --author gardenos --config.user 999:999 --config.workingdir /home/postgres \
    --config.env "PATH=/usr/lib/postgresql/$pg_major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.env PGDATA=/home/postgres/pgdata/pgroot/data \
    --config.exposedports 5432/tcp --config.exposedports 8008/tcp \
    --config.entrypoint patroni --config.cmd /etc/patroni/patroni.yml
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$out/postgres.tar" .
  touch "$out/.complete"
  for old in "$cache"/*/; do [ "${old%/}" = "$out" ] || rm -rf "${old%/}"; done
fi
echo "$out/postgres.tar"
