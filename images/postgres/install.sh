#!/bin/sh
# The GardenOS PostgreSQL image's one recipe, run as root on a Debian 13 (trixie) root: by the
# Containerfile beside it (docker/podman/buildah build) and by scripts/build-postgres-image.sh
# (mmdebstrap + umoci, no container engine). Debian's PostgreSQL and Patroni 4 — the same packages
# `gardenos local` runs, so the StatefulSet runs the same rendered patroni.yml.
#   PG_MAJOR   PostgreSQL major version (Debian 13 ships 17; others need apt.postgresql.org)
set -eu
PG_MAJOR="${PG_MAJOR:-17}"
export DEBIAN_FRONTEND=noninteractive
apt_install() { apt-get install -y -qq --no-install-recommends "$@"; }
apt-get update -qq
# A fixed uid/gid (999, as the official postgres images use) before postgresql-common makes one:
# the StatefulSet's securityContext and the volume-permissions step name it.
apt_install adduser
getent group postgres >/dev/null || addgroup --system --gid 999 postgres
getent passwd postgres >/dev/null || adduser --system --uid 999 --gid 999 --home /home/postgres --shell /bin/sh --no-create-home postgres
# Only the server's own cluster-less packages: Patroni runs initdb itself (no createcluster).
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/gardenos.conf
if ! apt-cache show "postgresql-$PG_MAJOR" >/dev/null 2>&1; then
  # Debian 13 ships PostgreSQL 17 only: other majors come from the PostgreSQL project's own apt repository
  # (PGDG), added by the script Debian's postgresql-common ships with the repository's key. (Not exercised by
  # GardenOS's tests: apt.postgresql.org is not reachable from the machines they run on.)
  apt_install postgresql-common ca-certificates
  /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y
fi
# python3-idna: python-etcd switches urllib3 to pyOpenSSL where it is installed, and that imports idna
# (the same reason scripts/install-deps.sh names it). The Recommends left out (Debian 13, checked):
# postgresql-17 → sysstat; postgresql-common → e2fsprogs, logrotate; patroni → iproute2; python3-urllib3
# → ca-certificates — tools and data, none imported by Patroni or PostgreSQL (the pods run them for real).
apt_install "postgresql-$PG_MAJOR" patroni python3-etcd python3-psycopg2 python3-idna
# The platform's postgres-exporter sidecar (monitoring.enabled) runs Debian's exporter from this image too:
# one image to pull, the same binary the local profile runs. It has no Recommends (Debian 13's 0.17.1, checked).
apt_install prometheus-postgres-exporter
# The platform's pooler (pooler.enabled) runs Debian's PgBouncer from this image as well, with psql (above) for
# `db switchover`'s PAUSE and RESUME through its admin console. No Recommends (Debian 13's 1.24.1, checked; python3
# and psycopg2 are only Suggested, for a script GardenOS does not use). The package's own service is never started
# in a container: the pod's command is pgbouncer itself.
apt_install pgbouncer
# Backups on the platform (backups.enabled): Debian's pgBackRest runs in every member's pod (archive_command, and its
# TLS server beside PostgreSQL), in the repository pod and in each backup Job — the same binary everywhere, as
# pgBackRest requires of a repository and its hosts. It has no Recommends (checked); postgresql-common, which it depends
# on, is here already.
apt_install pgbackrest
# The volume is mounted at /home/postgres/pgdata (Patroni's data directory is pgroot/data under it,
# so a file system's lost+found never stops initdb); the unix socket directory is writable by postgres.
install -d -o postgres -g postgres -m 0700 /home/postgres /home/postgres/pgdata
install -d -o postgres -g postgres -m 2775 /var/run/postgresql
# No package manager state or documentation in the image.
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /tmp/*
patroni --version
"/usr/lib/postgresql/$PG_MAJOR/bin/postgres" --version
prometheus-postgres-exporter --version 2>&1 | head -n 1
pgbouncer --version | head -n 1
pgbackrest version
