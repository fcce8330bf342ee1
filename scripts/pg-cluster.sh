# A throw-away PostgreSQL cluster on loopback, sourced by scripts/test and
# scripts/bench-postgres: `start_cluster` installs PostgreSQL with apt-get
# where it is missing, initdb's a cluster in a temp directory (as user
# postgres when run as root: initdb refuses root), starts it on a free port
# and exports NUDGE_TEST_POSTGRES_URL and NUDGE_TEST_POSTGRES_RESTART (a
# script that restarts it); `stop_cluster` stops and removes it.
# PG_DURABLE=1 keeps fsync on.

find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && echo "$d"
  done | sort -V | tail -n 1
}

install_pg() {
  echo "test: PostgreSQL is not installed; installing it (apt-get install postgresql)" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}

free_port() {
  local p
  for p in $(seq 55432 55532); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "test: no free port in 55432-55532" >&2
  exit 1
}

start_cluster() {
  pg_bin="${NUDGE_PG_BIN:-$(find_pg_bin)}"
  if [ -z "$pg_bin" ]; then
    install_pg
    pg_bin="$(find_pg_bin)"
  fi
  if [ -z "$pg_bin" ]; then
    echo "test: PostgreSQL is missing and could not be installed" >&2
    exit 1
  fi
  pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/nudge-pg.XXXXXX")"
  as=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root
    chown postgres "$pg_dir"
    as=(runuser -u postgres --)
  fi
  port="$(free_port)"
  "${as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1 || {
    cat "$pg_dir/initdb.log" >&2
    exit 1
  }
  # PG_DURABLE unset: fsync off, for a throw-away cluster whose tests kill
  # daemons, never the machine; benches keep the server's durability
  opts="-h 127.0.0.1 -p $port -k $pg_dir -c max_connections=400 -c shared_buffers=128MB"
  [ -n "${PG_DURABLE:-}" ] || opts="$opts -c fsync=off"
  "${as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -o "$opts" -w -s start
  cat >"$pg_dir/restart" <<RESTART
#!/usr/bin/env bash
exec ${as[*]} "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -m fast -w -s restart
RESTART
  chmod 755 "$pg_dir/restart"
  export NUDGE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export NUDGE_TEST_POSTGRES_RESTART="$pg_dir/restart"
  echo "test: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($pg_dir)"
}

stop_cluster() {
  [ -n "${pg_dir:-}" ] || return 0
  "${as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}

