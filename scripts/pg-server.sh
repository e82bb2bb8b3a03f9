#!/bin/bash
# A throwaway PostgreSQL server for the test suite.
#
#   scripts/pg-server.sh start        start one; print its libpq URL on stdout
#   scripts/pg-server.sh stop [URL]   stop it and remove its directory
#
# start: initdb into a fresh directory /tmp/quay-pg.<port> (--no-locale,
# UTF8, trust auth, superuser "postgres"), as a non-root user: when run as
# root, as the `postgres` system user that Debian's postgresql package
# creates, owning the directory.  The server listens on 127.0.0.1 only, on
# a free port, with its Unix socket inside the directory, and with
# durability off (fsync, synchronous_commit) since the data is thrown
# away.  stdout carries the URL and nothing else; progress goes to stderr.
#
# stop: the server is found from the URL's port: the argument, else
# $QUAY_PG_URL (scripts/test.sh exports it), else the last one started.
# Several servers may run side by side (one per port).
set -u

die() { echo "pg-server: $*" >&2; exit 1; }

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] ||
    die "no PostgreSQL server found under /usr/lib/postgresql/*/bin" \
        "(install it: scripts/deps.sh --test)"
  echo "$d"
}

tmproot=${TMPDIR:-/tmp}
last="$tmproot/quay-pg.last"

# Run a command as the server's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

# Non-0 when something listens on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local bin port dir tries=0
  bin=$(bindir) || exit 1
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 ||
      die "running as root but there is no 'postgres' user to run the server"
  fi
  while :; do
    tries=$((tries + 1))
    [ $tries -gt 20 ] && die "could not start a server (see logs above)"
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_busy "$port" && continue
    dir="$tmproot/quay-pg.$port"
    mkdir -m 700 "$dir" 2>/dev/null || continue      # taken by another run
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if ! as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
         --no-locale -E UTF8 >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      rm -rf "$dir"
      die "initdb failed"
    fi
    if as_owner "$bin/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
         -o "-p $port -c listen_addresses=127.0.0.1 \
             -c unix_socket_directories=$dir -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off" >&2; then
      break
    fi
    # Most likely the port was taken between the check and the start.
    tail -5 "$dir/server.log" >&2 2>/dev/null
    as_owner "$bin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1
    rm -rf "$dir"
  done
  echo "$port" >"$last.$$" && mv -f "$last.$$" "$last"
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local url=${1:-${QUAY_PG_URL:-}} port bin dir
  port=$(printf '%s' "$url" | sed -nE 's|.*@127\.0\.0\.1:([0-9]+)/.*|\1|p')
  [ -z "$port" ] && [ -f "$last" ] && port=$(cat "$last")
  [ -n "$port" ] || die "stop: which server? (give its URL)"
  dir="$tmproot/quay-pg.$port"
  [ -d "$dir" ] || die "stop: no server directory $dir"
  bin=$(bindir) || exit 1
  as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w >/dev/null 2>&1 ||
    as_owner "$bin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1
  rm -rf "$dir"
  [ -f "$last" ] && [ "$(cat "$last")" = "$port" ] && rm -f "$last"
  return 0
}

case ${1:-} in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop [URL]" >&2; exit 2 ;;
esac
