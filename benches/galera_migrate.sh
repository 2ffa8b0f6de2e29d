#!/usr/bin/env bash
# Benchmark: `gatehouse-migration up` from an empty database to the latest
# schema on the 3-node Galera cluster with three concurrent migrators (one
# per node, as a rolling deploy starts them), against the same three
# migrators on one MariaDB server, and one migrator on each, side by side in
# one run. Each round uses fresh databases; the order alternates per round.
#
#   bash benches/galera_migrate.sh          # needs scripts/topologies.sh start galera
#
# Environment: BENCH_ROUNDS (default 5), BIN (default the release binary,
# built when missing), BENCH_OUT (also write the table as Markdown there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-5}
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/gatehouse-migration}
GALERA_PORTS=(3311 3312 3313)
SINGLE_PORT=3306

die() { echo "error: $*" >&2; exit 1; }
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release -p gatehouse-migration >&2)
[[ -x $BIN ]] || die "$BIN was not built"
sql() { mariadb -h 127.0.0.1 -P "$1" -uroot -NBe "$2"; }
sql "${GALERA_PORTS[0]}" 'SELECT 1' >/dev/null 2>&1 ||
  die "the Galera cluster is not running: bash scripts/topologies.sh start galera"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
SEQ=0
# contender <name> <ports...>: one migrator per port, all at once, on a fresh database.
declare -A TIMES
contender() {
  local name=$1; shift
  SEQ=$((SEQ + 1))
  local db="gh_bench_galera_$$_$SEQ" t0 pids=() port
  sql "$1" "CREATE DATABASE $db"
  t0=$(now_ms)
  for port in "$@"; do
    DATABASE_URL="mysql://root@127.0.0.1:$port/$db" "$BIN" up >/dev/null 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "$name: a migrator failed"; done
  TIMES[$name]+="$(($(now_ms) - t0)) "
  [[ $(sql "$1" "SELECT COUNT(*) FROM $db.roles") == 4 ]] || die "$name: roles not seeded"
  sql "$1" "DROP DATABASE $db"
}

NAMES=("galera, 3 migrators (1 per node)" "galera, 1 migrator" "mariadb, 3 migrators" "mariadb, 1 migrator")
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  order=(0 1 2 3)
  ((round % 2 == 0)) && order=(3 2 1 0)
  for i in "${order[@]}"; do
    case $i in
      0) contender "${NAMES[0]}" "${GALERA_PORTS[@]}" ;;
      1) contender "${NAMES[1]}" "${GALERA_PORTS[0]}" ;;
      2) contender "${NAMES[2]}" $SINGLE_PORT $SINGLE_PORT $SINGLE_PORT ;;
      3) contender "${NAMES[3]}" $SINGLE_PORT ;;
    esac
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(echo "${TIMES[${NAMES[3]}]}" | median)
{
  echo "| contender | p50 ms | vs one MariaDB migrator |"
  echo "|---|--:|--:|"
  for name in "${NAMES[@]}"; do
    m=$(echo "${TIMES[$name]}" | median)
    printf '| %s | %s | %.2fx |\n' "$name" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {print a / b}')"
  done
} | tee "${BENCH_OUT:-/dev/null}"
