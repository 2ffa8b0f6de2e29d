#!/usr/bin/env bash
# Production topologies as local test fixtures, from Debian's packages:
#   galera     a 3-node MariaDB Galera cluster on 127.0.0.1:3311, 3312, 3313
#   pgbouncer  PgBouncer before the local PostgreSQL: transaction pooling on
#              127.0.0.1:6432, session pooling on 127.0.0.1:6433
#   standby    a PostgreSQL streaming hot standby of the local server on
#              127.0.0.1:5433
#
# Usage: scripts/topologies.sh start|stop|status [galera|pgbouncer|standby ...]
# (all three when none is named). Idempotent: a running fixture is left as it
# is. State lives in $GATEHOUSE_TOPOLOGY_DIR (default /var/tmp/gatehouse-topologies).
# Needs the local PostgreSQL (5432) running: scripts/services.sh starts it.
set -euo pipefail

DIR=${GATEHOUSE_TOPOLOGY_DIR:-/var/tmp/gatehouse-topologies}
GALERA_PORTS=(3311 3312 3313)
PGBOUNCER_TX_PORT=6432
PGBOUNCER_SESSION_PORT=6433
STANDBY_PORT=5433

log() { printf '[topologies] %s\n' "$*"; }
die() { printf '[topologies] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
need_package() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing $2"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

wait_for() { # seconds description command...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}

pg_version() { ls /etc/postgresql | sort -V | tail -n1; }
pg_bin() { echo "/usr/lib/postgresql/$(pg_version)/bin"; }
as_postgres() { as_root runuser -u postgres -- "$@"; }

# --- Galera -----------------------------------------------------------------

galera_node_dir() { echo "$DIR/galera/node$1"; }
galera_ready() { # node index (1-based): synced and accepting TCP logins
  local port=${GALERA_PORTS[$(($1 - 1))]}
  [ "$(mariadb -h 127.0.0.1 -P "$port" -uroot -Nse "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}')" = Synced ]
}
galera_cluster_size() {
  mariadb -h 127.0.0.1 -P "${GALERA_PORTS[0]}" -uroot -Nse "SHOW STATUS LIKE 'wsrep_cluster_size'" 2>/dev/null | awk '{print $2}'
}

galera_start_node() { # index, extra mariadbd arguments...
  local i=$1; shift
  local d port base
  d=$(galera_node_dir "$i")
  port=${GALERA_PORTS[$((i - 1))]}
  base=$((4560 + 10 * i))
  if galera_ready "$i"; then return 0; fi
  if [ ! -d "$d/data/mysql" ]; then
    mkdir -p "$d/data"
    chown -R mysql:mysql "$d"
    mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" \
      --auth-root-authentication-method=normal >"$d/install.log" 2>&1 ||
      die "mariadb-install-db failed for Galera node $i: see $d/install.log"
  fi
  local cluster="gcomm://127.0.0.1:4571,127.0.0.1:4581,127.0.0.1:4591"
  log "starting Galera node $i on 127.0.0.1:$port"
  # mariadb-backup (the SST) reads these arguments too: no InnoDB sizing here,
  # which it refuses as unknown variables.
  start-stop-daemon --start --background --make-pidfile --pidfile "$d/mariadbd.pid" \
    --exec /usr/sbin/mariadbd -- --no-defaults --user=mysql \
    --datadir="$d/data" --socket="$d/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
    --log-error="$d/error.log" --pid-file="$d/data/mariadbd.pid" \
    --max-connections=400 \
    --skip-name-resolve \
    --wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so \
    --wsrep-cluster-name=gatehouse --wsrep-cluster-address="$cluster" \
    --wsrep-node-name="node$i" --wsrep-node-address=127.0.0.1 \
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$((base + 1));ist.recv_addr=127.0.0.1:$((base + 2));gcache.size=64M" \
    --wsrep-sst-receive-address="127.0.0.1:$((base + 3))" \
    --wsrep-sst-method=mariabackup --wsrep-sst-auth=root: \
    --binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
    "$@"
  wait_for 120 "Galera node $i" galera_ready "$i" ||
    die "Galera node $i did not reach Synced within 120 s: see $d/error.log"
}

galera_grant() {
  # TCP logins as root with an empty password, as the tests use (replicated).
  mariadb -uroot -S "$(galera_node_dir 1)/mysqld.sock" -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    FLUSH PRIVILEGES;"
}

galera_start() {
  need_package mariadbd mariadb-server
  [ -f /usr/lib/galera/libgalera_smm.so ] || need_package /usr/lib/galera/libgalera_smm.so galera-4
  need_package mariabackup mariadb-backup
  need_package socat socat
  if [ "$(galera_cluster_size)" = 3 ] && galera_ready 2 && galera_ready 3; then
    log "Galera cluster already running (3 nodes synced)"; return 0
  fi
  # Node 1 bootstraps when no node of the cluster runs.
  if ! galera_ready 1 && ! galera_ready 2 && ! galera_ready 3; then
    local d
    d=$(galera_node_dir 1)
    if [ -f "$d/data/grastate.dat" ]; then
      sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$d/data/grastate.dat"
    fi
    if [ ! -d "$d/data/mysql" ]; then
      galera_start_node 1 --wsrep-new-cluster
      mariadb -uroot -S "$d/mysqld.sock" -e "SELECT 1" >/dev/null
    else
      galera_start_node 1 --wsrep-new-cluster
    fi
    galera_grant
  fi
  galera_start_node 1
  galera_start_node 2
  galera_start_node 3
  wait_for 60 "cluster size 3" sh -c "[ \"\$(mariadb -h 127.0.0.1 -P ${GALERA_PORTS[0]} -uroot -Nse \"SHOW STATUS LIKE 'wsrep_cluster_size'\" | awk '{print \$2}')\" = 3 ]" ||
    die "the Galera cluster did not reach 3 nodes"
  log "Galera cluster ready: 3 nodes synced on 127.0.0.1:${GALERA_PORTS[*]}"
}

galera_stop() {
  for i in 3 2 1; do
    local d
    d=$(galera_node_dir "$i")
    [ -f "$d/mariadbd.pid" ] || continue
    start-stop-daemon --stop --quiet --oknodo --retry 60 --pidfile "$d/mariadbd.pid" || true
    rm -f "$d/mariadbd.pid"
  done
  log "Galera cluster stopped"
}

galera_status() {
  for i in 1 2 3; do
    if galera_ready "$i"; then log "galera node $i: synced (127.0.0.1:${GALERA_PORTS[$((i - 1))]})"; else log "galera node $i: down"; fi
  done
}

# --- PgBouncer --------------------------------------------------------------

pgbouncer_ready() { # port
  psql "host=127.0.0.1 port=$1 user=postgres dbname=postgres" -Atqc 'SELECT 1' >/dev/null 2>&1
}

pgbouncer_start_one() { # mode port
  local mode=$1 port=$2 d="$DIR/pgbouncer-$1"
  if pgbouncer_ready "$port"; then return 0; fi
  mkdir -p "$d"
  cat >"$d/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $d/userlist.txt
pool_mode = $mode
max_client_conn = 500
default_pool_size = 20
; sqlx sends extra_float_digits at start-up.
ignore_startup_parameters = extra_float_digits
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
EOF
  printf '"postgres" ""\n' >"$d/userlist.txt"
  chown -R postgres:postgres "$d"
  log "starting PgBouncer ($mode pooling) on 127.0.0.1:$port"
  # PgBouncer refuses to run as root.
  as_postgres pgbouncer -d "$d/pgbouncer.ini"
  wait_for 30 "PgBouncer $mode" pgbouncer_ready "$port" ||
    die "PgBouncer ($mode) did not accept connections: see $d/pgbouncer.log"
}

pgbouncer_start() {
  need_package pgbouncer pgbouncer
  pgbouncer_start_one transaction "$PGBOUNCER_TX_PORT"
  pgbouncer_start_one session "$PGBOUNCER_SESSION_PORT"
  log "PgBouncer ready: transaction pooling on $PGBOUNCER_TX_PORT, session pooling on $PGBOUNCER_SESSION_PORT"
}

pgbouncer_stop() {
  for mode in transaction session; do
    local pid="$DIR/pgbouncer-$mode/pgbouncer.pid"
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  log "PgBouncer stopped"
}

pgbouncer_status() {
  for p in "$PGBOUNCER_TX_PORT" "$PGBOUNCER_SESSION_PORT"; do
    if pgbouncer_ready "$p"; then log "pgbouncer $p: up"; else log "pgbouncer $p: down"; fi
  done
}

# --- Hot standby --------------------------------------------------------------

standby_ready() {
  [ "$(psql -h 127.0.0.1 -p "$STANDBY_PORT" -U postgres -d postgres -Atqc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]
}

standby_start() {
  local d="$DIR/standby" hba
  if standby_ready; then
    # A test that paused replay and died before resuming it leaves it paused.
    psql -h 127.0.0.1 -p "$STANDBY_PORT" -U postgres -d postgres -Atqc \
      'SELECT pg_wal_replay_resume() WHERE pg_is_wal_replay_paused()' >/dev/null
    log "standby already running on 127.0.0.1:$STANDBY_PORT"
    return 0
  fi
  hba=/etc/postgresql/$(pg_version)/main/pg_hba.conf
  if ! grep -q '^host replication all 127.0.0.1/32 trust' "$hba"; then
    log "allowing replication connections from 127.0.0.1 in $hba"
    as_root sed -i '1i host replication all 127.0.0.1/32 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main reload
  fi
  if [ ! -f "$d/data/standby.signal" ]; then
    rm -rf "$d"
    mkdir -p "$d"
    chown postgres:postgres "$d"
    log "cloning the primary with pg_basebackup"
    as_postgres "$(pg_bin)/pg_basebackup" -h 127.0.0.1 -p 5432 -U postgres -D "$d/data" -R -X stream -c fast
    # Debian keeps the primary's configuration in /etc: the standby gets its own.
    cat >"$d/data/postgresql.conf" <<EOF
port = $STANDBY_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$d'
hot_standby = on
max_connections = 200
shared_buffers = 64MB
EOF
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$d/data/pg_hba.conf"
    : >"$d/data/pg_ident.conf"
    chown postgres:postgres "$d/data/postgresql.conf" "$d/data/pg_hba.conf" "$d/data/pg_ident.conf"
  fi
  log "starting the hot standby on 127.0.0.1:$STANDBY_PORT"
  as_postgres "$(pg_bin)/pg_ctl" -D "$d/data" -l "$d/standby.log" -w -t 60 start >/dev/null ||
    die "the standby did not start: see $d/standby.log"
  wait_for 60 standby standby_ready || die "the standby is not in recovery: see $d/standby.log"
  log "standby ready on 127.0.0.1:$STANDBY_PORT (streaming from 127.0.0.1:5432)"
}

standby_stop() {
  local d="$DIR/standby"
  [ -f "$d/data/postmaster.pid" ] && as_postgres "$(pg_bin)/pg_ctl" -D "$d/data" -m fast stop >/dev/null 2>&1 || true
  log "standby stopped"
}

standby_status() {
  if standby_ready; then log "standby $STANDBY_PORT: in recovery"; else log "standby $STANDBY_PORT: down"; fi
}

# --- Main ---------------------------------------------------------------------

action=${1:-}
[ -n "$action" ] || die "usage: $0 start|stop|status [galera|pgbouncer|standby ...]"
shift
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(galera pgbouncer standby)
mkdir -p "$DIR"
for t in "${which[@]}"; do
  case "$t" in
    galera | pgbouncer | standby) ;;
    *) die "unknown topology '$t' (galera, pgbouncer or standby)" ;;
  esac
  case "$action" in
    start | stop | status) "${t}_${action}" ;;
    *) die "unknown action '$action' (start, stop or status)" ;;
  esac
done
