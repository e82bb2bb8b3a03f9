#!/bin/bash
# A throwaway PostgreSQL cluster for the test suite: a primary, a streaming
# replica of it and PgBouncer in transaction pooling mode in front of it.
#
#   scripts/pg-cluster.sh start          start all three; print their URLs
#   scripts/pg-cluster.sh stop [DIR]     stop them and remove the directory
#   scripts/pg-cluster.sh ACTION [DIR]   fault injection for the specs:
#       stop-replica | start-replica     stop (fast) / start the replica
#       kill-replica                     SIGKILL the replica's postmaster
#       restart-bouncer                  stop PgBouncer and start it again
#       restart-primary                  pg_ctl restart of the primary
#       wait-replica                     wait until the replica has replayed
#                                        everything the primary wrote
#
# start: the primary is scripts/pg-server.sh's server (its directory
# /tmp/quay-pg.<port> holds everything).  The replica is made with
# pg_basebackup -R (streaming, hot standby) into DIR/replica; PgBouncer
# (pool_mode = transaction, a pool of 4 server connections per database,
# so that a client's transactions run on different server connections)
# listens on its own port and forwards every database name to the
# primary.  All of it listens on 127.0.0.1 on free ports and runs as a
# non-root user (`postgres` when run as root).  stdout carries four shell
# assignments and nothing else; progress goes to stderr:
#     QUAY_PG_URL=postgresql://postgres@127.0.0.1:<p>/postgres
#     QUAY_PG_REPLICA_URL=postgresql://postgres@127.0.0.1:<r>/postgres
#     QUAY_PGBOUNCER_URL=postgresql://postgres@127.0.0.1:<b>/quay_pgb
#     QUAY_PG_CLUSTER=/tmp/quay-pg.<p>
# The PgBouncer URL names the database quay_pgb (created on the primary),
# so the suite's pass through PgBouncer does not share a schema with the
# direct pass.  DIR defaults to $QUAY_PG_CLUSTER.
set -u
# The specs call this under the sanitizer run, whose LD_PRELOAD (ASan) the
# PostgreSQL tools must not inherit: pg_ctl hangs under it.
unset LD_PRELOAD

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "pg-cluster: $*" >&2; exit 1; }

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/pg_basebackup" ] ||
    die "no PostgreSQL server found (install it: scripts/deps.sh --test)"
  echo "$d"
}

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

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p tries=0
  while :; do
    tries=$((tries + 1))
    [ $tries -gt 50 ] && die "no free port found"
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_busy "$p" || { echo "$p"; return; }
  done
}

# psql against port $1 (database $2), quiet, one value per line.
q() {
  local port=$1 db=$2
  shift 2
  "$(bindir)/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d "$db" \
    -v ON_ERROR_STOP=1 "$@"
}

bouncer_bin() {
  command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] &&
    echo /usr/sbin/pgbouncer; } || die "pgbouncer is not installed" \
    "(scripts/deps.sh --test installs it)"
}

start_bouncer() {
  local dir=$1 bport i
  bport=$(cat "$dir/bouncer/port")
  as_owner "$(bouncer_bin)" -d "$dir/bouncer/pgbouncer.ini" >/dev/null 2>&1 ||
    { cat "$dir/bouncer/pgbouncer.log" >&2 2>/dev/null; return 1; }
  for i in $(seq 1 100); do
    port_busy "$bport" && return 0
    sleep 0.1
  done
  tail -5 "$dir/bouncer/pgbouncer.log" >&2 2>/dev/null
  return 1
}

stop_bouncer() {
  local dir=$1 pid i
  [ -f "$dir/bouncer/pgbouncer.pid" ] || return 0
  pid=$(cat "$dir/bouncer/pgbouncer.pid" 2>/dev/null)
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$dir/bouncer/pgbouncer.pid"
  return 0
}

start_replica() {
  local dir=$1 rport
  rport=$(cat "$dir/replica.port")
  as_owner "$(bindir)/pg_ctl" start -w -t 60 -D "$dir/replica" \
    -l "$dir/replica.log" \
    -o "-p $rport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir \
        -c hot_standby=on -c hot_standby_feedback=on \
        -c wal_receiver_status_interval=1 -c wal_retrieve_retry_interval=500" \
    >&2
}

stop_replica() {
  local dir=$1
  as_owner "$(bindir)/pg_ctl" stop -D "$dir/replica" -m fast -w >/dev/null 2>&1 ||
    as_owner "$(bindir)/pg_ctl" stop -D "$dir/replica" -m immediate >/dev/null 2>&1
  return 0
}

# Wait until the replica has replayed the primary's current WAL position.
wait_replica() {
  local dir=$1 pport rport lsn i
  pport=$(cat "$dir/primary.port")
  rport=$(cat "$dir/replica.port")
  lsn=$(q "$pport" postgres -c "SELECT pg_current_wal_insert_lsn()") || return 1
  for i in $(seq 1 300); do
    if [ "$(q "$rport" postgres -c "SELECT coalesce(pg_last_wal_replay_lsn() \
          >= '$lsn'::pg_lsn, false)" 2>/dev/null)" = t ]; then
      return 0
    fi
    sleep 0.1
  done
  echo "pg-cluster: the replica did not catch up with $lsn" >&2
  return 1
}

start() {
  local url pport rport bport dir bin
  bin=$(bindir) || exit 1
  bouncer_bin >/dev/null || exit 1
  url=$("$here/pg-server.sh" start) || exit 1
  pport=$(printf '%s' "$url" | sed -nE 's|.*@127\.0\.0\.1:([0-9]+)/.*|\1|p')
  dir="${TMPDIR:-/tmp}/quay-pg.$pport"
  echo "$pport" >"$dir/primary.port"
  fail() {
    echo "pg-cluster: $*" >&2
    stop "$dir"
    exit 1
  }
  # No autovacuum on the primary: a vacuum that truncates a catalog (the
  # specs create and drop many tables) takes an ACCESS EXCLUSIVE lock that
  # the replica replays; while a spec holds replay paused, the replica's
  # startup process keeps that lock, and every new connection to the
  # replica waits for it at its start (seen as a 15-minute timeout of
  # interactions_scaleout, its replay never resumed).
  # The WAL writer every 10 ms: the server commits asynchronously
  # (synchronous_commit off), so the replica sees a commit only once the
  # WAL writer flushes it, every wal_writer_delay (200 ms by default); the
  # scale-out specs wait for the replica after each set-up (spec/cluster.lua
  # caught_up), which took 0.4 s a test, 80 s a pass of interactions_scaleout.
  q "$pport" postgres -c "ALTER SYSTEM SET autovacuum = off" \
    -c "ALTER SYSTEM SET wal_writer_delay = '10ms'" \
    -c "SELECT pg_reload_conf()" >/dev/null ||
    fail "could not turn autovacuum off and shorten the WAL writer's delay"
  # The replica: a base backup with a standby.signal and primary_conninfo.
  rport=$(free_port)
  echo "$rport" >"$dir/replica.port"
  as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres \
    -D "$dir/replica" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
    { cat "$dir/basebackup.log" >&2; fail "pg_basebackup failed"; }
  chmod 700 "$dir/replica"
  start_replica "$dir" || fail "the replica did not start"
  # PgBouncer in transaction pooling mode, in front of the primary.
  bport=$(free_port)
  mkdir -p "$dir/bouncer"
  echo "$bport" >"$dir/bouncer/port"
  printf '"postgres" ""\n' >"$dir/bouncer/users.txt"
  cat >"$dir/bouncer/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $dir/bouncer/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
server_login_retry = 1
query_wait_timeout = 15
server_connect_timeout = 5
logfile = $dir/bouncer/pgbouncer.log
pidfile = $dir/bouncer/pgbouncer.pid
EOF
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir/bouncer"
  start_bouncer "$dir" || fail "PgBouncer did not start"
  q "$pport" postgres -c "CREATE DATABASE quay_pgb" >/dev/null ||
    fail "could not create the database quay_pgb"
  wait_replica "$dir" || fail "the replica does not stream"
  echo "QUAY_PG_URL=$url"
  echo "QUAY_PG_REPLICA_URL=postgresql://postgres@127.0.0.1:$rport/postgres"
  echo "QUAY_PGBOUNCER_URL=postgresql://postgres@127.0.0.1:$bport/quay_pgb"
  echo "QUAY_PG_CLUSTER=$dir"
}

stop() {
  local dir=${1:-${QUAY_PG_CLUSTER:-}} pport
  [ -n "$dir" ] && [ -d "$dir" ] || die "stop: no cluster directory '$dir'"
  stop_bouncer "$dir"
  [ -d "$dir/replica" ] && stop_replica "$dir"
  pport=$(cat "$dir/primary.port" 2>/dev/null)
  [ -n "$pport" ] || pport=${dir##*.}
  "$here/pg-server.sh" stop "postgresql://postgres@127.0.0.1:$pport/postgres"
}

action=${1:-}
[ $# -gt 0 ] && shift
case $action in
  start) start ;;
  stop) stop "$@" ;;
  stop-replica|start-replica|kill-replica|restart-bouncer|restart-primary|wait-replica)
    dir=${1:-${QUAY_PG_CLUSTER:-}}
    [ -n "$dir" ] && [ -d "$dir" ] || die "$action: no cluster directory '$dir'"
    case $action in
      stop-replica) stop_replica "$dir" ;;
      start-replica) start_replica "$dir" && wait_replica "$dir" ;;
      kill-replica)
        pid=$(head -1 "$dir/replica/postmaster.pid" 2>/dev/null)
        [ -n "$pid" ] || die "kill-replica: the replica is not running"
        kill -KILL "$pid"
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        # Its children lose their postmaster and exit; wait for the port.
        for i in $(seq 1 50); do
          port_busy "$(cat "$dir/replica.port")" || break
          sleep 0.1
        done
        rm -f "$dir/replica/postmaster.pid" ;;
      restart-bouncer) stop_bouncer "$dir" && start_bouncer "$dir" ;;
      restart-primary)
        as_owner "$(bindir)/pg_ctl" restart -w -t 60 -m fast -D "$dir/data" \
          >/dev/null 2>&1 ;;
      wait-replica) wait_replica "$dir" ;;
    esac ;;
  *) echo "usage: $0 start | stop [DIR] | stop-replica | start-replica |" \
          "kill-replica | restart-bouncer | restart-primary | wait-replica [DIR]" >&2
     exit 2 ;;
esac
