#!/bin/sh
# The example API image's one recipe, run as root on a Debian 13 (trixie) root: by the Containerfile
# beside it and by scripts/build-debian-image.sh (mmdebstrap + umoci, no container engine).
# FastAPI, Uvicorn and psycopg 3 from Debian's packages; the app's code is copied in after.
# --no-install-recommends, so every module the app imports is named here. The Recommends left out (Debian 13,
# checked): python3-psycopg → python3-psycopg-c (optional C speed-ups; psycopg uses libpq5 without it);
# python3-starlette → aiofiles, itsdangerous, jinja2, python-multipart, yaml (static files, sessions,
# templates, forms, schema YAML — features this app does not use; h11 and uvicorn come as dependencies).
# The import check at the end, and the node test, run the app for real.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3-fastapi python3-uvicorn python3-psycopg python3-psycopg-pool ca-certificates
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /tmp/*
python3 -c 'import fastapi, uvicorn, psycopg, psycopg_pool; print("fastapi", fastapi.__version__, "psycopg", psycopg.__version__)'
