#!/usr/bin/env bash
# A database server of a test's own, from the machine's packages, that the
# test may crash and restart without disturbing the shared servers:
#
#   scripts/scratch-server.sh start   mariadb|postgres DIR PORT
#   scripts/scratch-server.sh crash   mariadb|postgres DIR PORT   (SIGKILL, as a power loss)
#   scripts/scratch-server.sh stop    mariadb|postgres DIR PORT   (and remove DIR)
#
# `start` initialises DIR on first use and returns once the server accepts
# TCP logins on 127.0.0.1:PORT (MariaDB: root, empty password; PostgreSQL:
# postgres, trust). After `crash`, `start` runs the server's crash recovery.
set -euo pipefail

action=$1 kind=$2 dir=$3 port=$4
log() { printf '[scratch-server] %s\n' "$*" >&2; }
die() { printf '[scratch-server] error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
wait_for() { # seconds command...
  local seconds=$1; shift
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}
pg_bin() { echo "/usr/lib/postgresql/$(ls /etc/postgresql | sort -V | tail -n1)/bin"; }

mariadb_up() { mariadb -h 127.0.0.1 -P "$port" -uroot -e 'SELECT 1'; }
mariadb_start() {
  if [ ! -d "$dir/data/mysql" ]; then
    mkdir -p "$dir/data"
    as_root chown -R mysql:mysql "$dir"
    mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
      --auth-root-authentication-method=normal >"$dir/install.log" 2>&1 ||
      die "mariadb-install-db failed: see $dir/install.log"
  fi
  start-stop-daemon --start --background --make-pidfile --pidfile "$dir/mariadbd.pid" \
    --exec /usr/sbin/mariadbd -- --no-defaults --user=mysql --datadir="$dir/data" \
    --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
    --log-error="$dir/error.log" --pid-file="$dir/data/mariadbd.pid"
  wait_for 60 mariadb -uroot -S "$dir/mysqld.sock" -e 'SELECT 1' ||
    die "MariaDB on port $port did not start: see $dir/error.log"
  mariadb -uroot -S "$dir/mysqld.sock" -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  wait_for 30 mariadb_up || die "MariaDB on port $port refuses TCP logins"
}
mariadb_crash() {
  [ -f "$dir/mariadbd.pid" ] && kill -9 "$(cat "$dir/mariadbd.pid")" 2>/dev/null || true
  wait_for 30 sh -c "! kill -0 \$(cat '$dir/mariadbd.pid') 2>/dev/null" || true
}

pg_up() { psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc 'SELECT 1'; }
postgres_start() {
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir"
    as_root chown postgres:postgres "$dir"
    as_root runuser -u postgres -- "$(pg_bin)/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: see $dir/initdb.log"
  fi
  as_root runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
    die "PostgreSQL on port $port did not start: see $dir/server.log"
  wait_for 30 pg_up || die "PostgreSQL on port $port refuses TCP logins"
}
postgres_crash() {
  as_root runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}

case "$action:$kind" in
  start:mariadb) mariadb_start ;;
  start:postgres) postgres_start ;;
  crash:mariadb) mariadb_crash ;;
  crash:postgres) postgres_crash ;;
  stop:mariadb) mariadb_crash; rm -rf "$dir" ;;
  stop:postgres) postgres_crash; rm -rf "$dir" ;;
  *) die "usage: $0 start|crash|stop mariadb|postgres DIR PORT" ;;
esac
