#!/bin/bash
# The replica's entry point: on first start, copy the primary (pg_basebackup -R writes the
# standby settings and standby.signal; -C -S creates the replication slot), then run PostgreSQL
# as a hot standby. Later starts only run PostgreSQL: it resumes streaming where it stopped.
set -euo pipefail
PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_basebackup -h db -U replicator -D "$PGDATA" -R -X stream -C -S replica1 -c fast; do
    echo "waiting for the primary…"
    rm -rf "${PGDATA:?}"/*
    sleep 2
  done
  chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on -c max_connections=300
