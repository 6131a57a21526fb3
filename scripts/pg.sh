#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server on 127.0.0.1 for the tests and benchmarks.
#   scripts/pg.sh start   installs PostgreSQL from Debian packages if missing, starts it, prints the URL
#   scripts/pg.sh stop
# The tests create their own databases on it (URL in METASIFT_TEST_PG).
set -euo pipefail
PORT="${METASIFT_PG_PORT:-54329}"
DATA="${METASIFT_PG_DIR:-/tmp/metasift-pg}"
URL="postgresql://metasift:metasift@127.0.0.1:${PORT}/postgres"

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_owner() {  # run a command as the owner of the data dir (postgres when we are root)
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    if ! BIN=$(find_bin); then
      echo "pg.sh: installing PostgreSQL from Debian packages" >&2
      if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
      $SUDO apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
      BIN=$(find_bin)
    fi
    if [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      echo "$URL"; exit 0
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      rm -rf "$DATA"; mkdir -p "$DATA"
      [ "$(id -u)" = "0" ] && chown postgres:postgres "$DATA"
      PW=$(mktemp); echo metasift > "$PW"; chmod 644 "$PW"
      as_owner "$BIN/initdb" -D "$DATA" -U metasift --pwfile="$PW" -A scram-sha-256 >/dev/null
      rm -f "$PW"
    fi
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
      -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    echo "$URL"
    ;;
  stop)
    BIN=$(find_bin) && as_owner "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
    ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
