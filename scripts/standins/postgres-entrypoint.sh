#!/bin/bash
# Entrypoint of the postgres stand-in (see Dockerfile.postgres): on first
# start, initialise PGDATA from POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB with a temporary socket-only server, as the official image
# does; then run the server on TCP.
set -euo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: POSTGRES_PASSWORD is not set (the official image refuses too)" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 >&2
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

    # Socket only while initialising: TCP clients must wait for the real one.
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >&2
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres \
            -c "CREATE DATABASE \"$db\"" >&2
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >&2
    echo "init done; starting postgres on TCP" >&2
fi

exec postgres -c listen_addresses='*' "${@:2}"
