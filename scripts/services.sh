#!/usr/bin/env bash
# Makes sure the PostgreSQL and MariaDB servers the tests use are running on
# 127.0.0.1 (5432 trust auth for `postgres`, 3306 `root` with an empty
# password): starts them when stopped, installs them from Debian's packages
# when absent. Idempotent; safe to run on a machine where both already run.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # description, command...
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "$what did not become ready within 60 s"; return 1
}

postgres_ready() { pg_isready -h 127.0.0.1 -p 5432 -q; }
postgres_login() { psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
  fi
  if ! postgres_ready; then
    log "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    wait_for PostgreSQL postgres_ready
  fi
  if ! postgres_login; then
    # A fresh Debian cluster asks TCP clients for a password: trust loopback, as the tests expect.
    local version hba
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    log "allowing trust auth for 127.0.0.1 in $hba"
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    wait_for "PostgreSQL login" postgres_login
  fi
  log "PostgreSQL ready: $(psql -h 127.0.0.1 -U postgres -Atqc 'SHOW server_version')"
}

mariadb_login() { mariadb -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; }

ensure_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
  fi
  if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && ! mariadb-admin ping >/dev/null 2>&1; then
    log "starting MariaDB"
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for MariaDB sh -c 'mariadb-admin -h 127.0.0.1 -uroot ping || mariadb-admin ping'
  fi
  if ! mariadb_login; then
    # A fresh Debian install lets root in through the socket only: add the TCP login the tests use.
    log "allowing root with an empty password from 127.0.0.1"
    as_root mariadb -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
      ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); \
      FLUSH PRIVILEGES;"
    wait_for "MariaDB login" mariadb_login
  fi
  log "MariaDB ready: $(mariadb -h 127.0.0.1 -uroot -Nse 'SELECT VERSION()')"
}

ensure_clients() {
  # The interoperability tests feed `migrate sql` output to each database's own client.
  command -v sqlite3 >/dev/null 2>&1 || apt_install sqlite3
}

ensure_postgres
ensure_mariadb
ensure_clients
