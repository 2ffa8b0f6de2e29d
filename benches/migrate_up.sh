#!/usr/bin/env bash
# Benchmark: `migration up` from an empty database to the latest schema,
# against the backend's own client (psql, mariadb, sqlite3) applying the same
# statements as rendered by `migration sql --backend <backend>`.
#
# For every backend and round, the two contenders run back to back, each on a
# fresh, uniquely named empty database (a fresh file for SQLite) that is
# dropped afterwards; the order of the two alternates from round to round.
# Both commands run under /usr/bin/time so they carry the same wrapper cost;
# its max-RSS figure gives the CLI's peak memory.
#
# Environment:
#   BENCH_ROUNDS            measured rounds per backend (default 10)
#   BENCH_WARMUP            unrecorded warm-up rounds per backend (default 1)
#   BENCH_BACKENDS          backends to run (default "postgres mariadb sqlite")
#   BENCH_OUT               also write the result table as Markdown to this file
#   BENCH_REQUIRE_BACKENDS  1: fail instead of skipping an unreachable server
#   BENCH_PG_HOST/PORT/USER/PASSWORD   default 127.0.0.1 / 5432 / postgres / none
#   BENCH_PG_SSLMODE        sslmode for both the CLI (URL parameter) and psql
#                           (PGSSLMODE); unset: each uses its default, `prefer`
#   BENCH_MY_HOST/PORT/USER/PASSWORD   default 127.0.0.1 / 3306 / root / none
#   BENCH_SQLITE_DIR        where SQLite files are created (default: a temp dir)
#   CARGO_TARGET_DIR        honoured when locating the release binary
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-10}
WARMUP=${BENCH_WARMUP:-1}
BACKENDS=${BENCH_BACKENDS:-postgres mariadb sqlite}
REQUIRE=${BENCH_REQUIRE_BACKENDS:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/gatehouse-migration
GNU_TIME=/usr/bin/time
RATIO_GOAL=1.3
RSS_GOAL_MIB=60

PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}
PG_PASSWORD=${BENCH_PG_PASSWORD:-}
PG_SSLMODE=${BENCH_PG_SSLMODE:-}
MY_HOST=${BENCH_MY_HOST:-127.0.0.1}
MY_PORT=${BENCH_MY_PORT:-3306}
MY_USER=${BENCH_MY_USER:-root}
MY_PASSWORD=${BENCH_MY_PASSWORD:-}

# Every timed command, CLI or client, is started through env(1) so each
# carries the same exec chain: time -> env -> program.
PG_ENV=() MY_ENV=()
[[ -n $PG_PASSWORD ]] && PG_ENV+=("PGPASSWORD=$PG_PASSWORD")
[[ -n $PG_SSLMODE ]] && PG_ENV+=("PGSSLMODE=$PG_SSLMODE")
[[ -n $MY_PASSWORD ]] && MY_ENV=("MYSQL_PWD=$MY_PASSWORD")

die() { echo "error: $*" >&2; exit 1; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer (got '$ROUNDS')"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer (got '$WARMUP')"
[[ -x $GNU_TIME ]] || die "$GNU_TIME (GNU time) is required"
command -v awk >/dev/null || die "awk is required"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
SQLITE_DIR=${BENCH_SQLITE_DIR:-$WORK}
CURRENT_DROP=""
cleanup() {
    local status=$?
    if [[ -n $CURRENT_DROP ]]; then eval "$CURRENT_DROP" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the binary and the rendered SQL -----------------------------------------

if [[ ! -x $BIN ]]; then
    echo "building the release migration binary (cargo build --release -p gatehouse-migration)" >&2
    (cd "$ROOT" && cargo build --release -p gatehouse-migration) >&2
fi
[[ -x $BIN ]] || die "$BIN was not built"

# Run the CLI from the work directory so no ./.env of the caller leaks in.
cd "$WORK"

# `migration sql` prints exactly what `migration up` executes, values inlined
# as each backend's client reads them (UUIDs as x'...' on MySQL and SQLite).
render() { # backend-name sql-backend
    "$BIN" sql --backend "$2" >"$WORK/$1.sql" || die "migration sql --backend $2 failed"
    [[ -s $WORK/$1.sql ]] || die "migration sql --backend $2 printed nothing"
}

# --- clock ---------------------------------------------------------------------

# now_us: sets NOW_US to microseconds since the epoch; bash's EPOCHREALTIME
# needs no fork, `date +%s%N` is the fallback.
now_us() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        NOW_US=${EPOCHREALTIME/[.,]/}
    else
        NOW_US=$(($(date +%s%N) / 1000))
    fi
}

# timed <rss-file> <log-file> <cmd...>: runs cmd under GNU time with stdin from
# $STDIN_FILE (or /dev/null), sets ELAPSED_US; dies with the log on failure.
STDIN_FILE=/dev/null
timed() {
    local rss_file=$1 log=$2; shift 2
    local t0 shown=$*
    [[ -n $PG_PASSWORD ]] && shown=${shown//"$PG_PASSWORD"/***}
    [[ -n $MY_PASSWORD ]] && shown=${shown//"$MY_PASSWORD"/***}
    now_us; t0=$NOW_US
    if ! "$GNU_TIME" -f %M -o "$rss_file" "$@" <"$STDIN_FILE" >"$log" 2>&1; then
        echo "command failed: $shown" >&2
        sed 's/^/  | /' "$log" >&2
        exit 1
    fi
    now_us
    ELAPSED_US=$((NOW_US - t0))
}

# --- backends --------------------------------------------------------------------
# Each backend provides: <b>_reachable, <b>_create NAME, <b>_drop NAME,
# <b>_url NAME, <b>_client NAME SQLFILE (runs under `timed`), <b>_count NAME TABLE.

pg_env() { env "${PG_ENV[@]}" "$@"; }
pg_psql() { pg_env psql -X -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"; }
postgres_reachable() { pg_psql -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }
postgres_create() { pg_psql -d postgres -qc "CREATE DATABASE \"$1\"" >/dev/null; }
postgres_drop() { pg_psql -d postgres -qc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null; }
postgres_url() {
    local cred=$PG_USER
    [[ -n $PG_PASSWORD ]] && cred="$PG_USER:$PG_PASSWORD"
    echo "postgres://$cred@$PG_HOST:$PG_PORT/$1${PG_SSLMODE:+?sslmode=$PG_SSLMODE}"
}
postgres_client() {
    STDIN_FILE=/dev/null
    timed "$WORK/client.rss" "$WORK/client.log" \
        env "${PG_ENV[@]}" psql -X -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$1" -v ON_ERROR_STOP=1 -q -f "$2"
}
postgres_count() { pg_psql -d "$1" -Atqc "SELECT count(*) FROM $2"; }

my_client() { # mariadb client with credentials
    if [[ -n $MY_PASSWORD ]]; then MYSQL_PWD=$MY_PASSWORD mariadb -h"$MY_HOST" -P"$MY_PORT" -u"$MY_USER" "$@"
    else mariadb -h"$MY_HOST" -P"$MY_PORT" -u"$MY_USER" "$@"; fi
}
mariadb_reachable() { command -v mariadb >/dev/null && my_client -NBe 'SELECT 1' >/dev/null 2>&1; }
mariadb_create() { my_client -e "CREATE DATABASE \`$1\`"; }
mariadb_drop() { my_client -e "DROP DATABASE IF EXISTS \`$1\`"; }
mariadb_url() {
    local cred=$MY_USER
    [[ -n $MY_PASSWORD ]] && cred="$MY_USER:$MY_PASSWORD"
    echo "mysql://$cred@$MY_HOST:$MY_PORT/$1"
}
mariadb_client() {
    STDIN_FILE=$2
    timed "$WORK/client.rss" "$WORK/client.log" \
        env "${MY_ENV[@]}" mariadb -h"$MY_HOST" -P"$MY_PORT" -u"$MY_USER" "$1"
    STDIN_FILE=/dev/null
}
mariadb_count() { my_client -NBe "SELECT count(*) FROM \`$1\`.\`$2\`"; }

sqlite_file() { echo "$SQLITE_DIR/$1.db"; }
sqlite_reachable() { command -v sqlite3 >/dev/null; }
sqlite_create() { rm -f "$(sqlite_file "$1")"{,-journal,-wal,-shm}; }
sqlite_drop() { rm -f "$(sqlite_file "$1")"{,-journal,-wal,-shm}; }
sqlite_url() { echo "sqlite://$(sqlite_file "$1")?mode=rwc"; }
sqlite_client() {
    STDIN_FILE=$2
    timed "$WORK/client.rss" "$WORK/client.log" env sqlite3 -bail "$(sqlite_file "$1")"
    STDIN_FILE=/dev/null
}
sqlite_count() { sqlite3 "$(sqlite_file "$1")" "SELECT count(*) FROM $2"; }

sql_backend() { case $1 in postgres) echo postgres ;; mariadb) echo mysql ;; sqlite) echo sqlite ;; esac; }

expect_count() { # backend db table expected what
    local got
    got=$("$1_count" "$2" "$3" 2>&1) || got="query failed: $got"
    if [[ $got != "$4" ]]; then
        echo "verification failed after $5 on $1: $3 has '$got' rows, expected $4" >&2
        exit 1
    fi
}

SEQ=0
fresh_name() { SEQ=$((SEQ + 1)); echo "gh_bench_$$_${SEQ}"; }

# run_cli backend -> appends ms to CLI_MS, KiB to CLI_RSS (unless warm-up)
run_cli() {
    local b=$1 record=$2 db
    db=$(fresh_name)
    "${b}_create" "$db"
    CURRENT_DROP="${b}_drop $db"
    STDIN_FILE=/dev/null
    timed "$WORK/cli.rss" "$WORK/cli.log" \
        env -u DATABASE_SCHEMA DATABASE_URL="$("${b}_url" "$db")" "$BIN" up
    expect_count "$b" "$db" roles 4 "migration up"
    expect_count "$b" "$db" seaql_migrations "$MIGRATIONS" "migration up"
    "${b}_drop" "$db"
    CURRENT_DROP=""
    if [[ $record == 1 ]]; then
        CLI_MS+=("$(awk -v us="$ELAPSED_US" 'BEGIN { printf "%.3f", us / 1000 }')")
        CLI_RSS+=("$(tr -dc '0-9' <"$WORK/cli.rss")")
    fi
}

run_client() {
    local b=$1 record=$2 db
    db=$(fresh_name)
    "${b}_create" "$db"
    CURRENT_DROP="${b}_drop $db"
    "${b}_client" "$db" "$WORK/$b.sql"
    expect_count "$b" "$db" roles 4 "the client"
    "${b}_drop" "$db"
    CURRENT_DROP=""
    if [[ $record == 1 ]]; then
        CLIENT_MS+=("$(awk -v us="$ELAPSED_US" 'BEGIN { printf "%.3f", us / 1000 }')")
        CLIENT_RSS+=("$(tr -dc '0-9' <"$WORK/client.rss")")
    fi
}

# stats <values...> -> "median p90 min max" (p90: nearest rank)
stats() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            n = NR
            med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            r = int(0.9 * n); if (r < 0.9 * n) r++; if (r < 1) r = 1
            printf "%.1f %.1f %.1f %.1f\n", med, v[r], v[1], v[n]
        }'
}
max_of() { printf '%s\n' "$@" | sort -n | tail -1; }

# --- run -------------------------------------------------------------------------

declare -a ROWS=() SKIPPED=()
RATIO_OK=() RATIO_MISS=()
RSS_MAX_ALL=0

echo "gatehouse: migration up vs the database's own client"
echo "binary: $BIN"
echo "rounds: $ROUNDS (+$WARMUP warm-up) per backend, $(nproc) CPU(s)"
echo

for b in $BACKENDS; do
    case $b in postgres|mariadb|sqlite) ;; *) die "unknown backend '$b' (postgres, mariadb, sqlite)" ;; esac
    if ! "${b}_reachable"; then
        if [[ $REQUIRE == 1 ]]; then die "$b unreachable and BENCH_REQUIRE_BACKENDS=1"; fi
        echo "skipped: $b unreachable"
        SKIPPED+=("$b")
        continue
    fi
    render "$b" "$(sql_backend "$b")"
    MIGRATIONS=$(grep -c '^-- m' "$WORK/$b.sql")
    stmts=$(grep -c ';$' "$WORK/$b.sql" || true)
    note=""
    if [[ $b != postgres ]]; then note=", $(grep -oE "x'[0-9a-fA-F]{32}'" "$WORK/$b.sql" | wc -l) UUID literals as hex"; fi
    echo "$b: $stmts statements in $(grep -c '^-- ' "$WORK/$b.sql" || true) migrations$note"

    CLI_MS=() CLI_RSS=() CLIENT_MS=() CLIENT_RSS=()
    for ((i = 0; i < WARMUP; i++)); do run_cli "$b" 0; run_client "$b" 0; done
    for ((i = 1; i <= ROUNDS; i++)); do
        if ((i % 2)); then run_cli "$b" 1; run_client "$b" 1
        else run_client "$b" 1; run_cli "$b" 1; fi
        printf '  round %2d/%d: cli %8.1f ms  client %8.1f ms\n' "$i" "$ROUNDS" "${CLI_MS[-1]}" "${CLIENT_MS[-1]}"
    done

    PAIRED=()
    for ((k = 0; k < ${#CLI_MS[@]}; k++)); do
        PAIRED+=("$(awk -v a="${CLI_MS[k]}" -v b="${CLIENT_MS[k]}" 'BEGIN { printf "%.4f", a / b }')")
    done
    paired=$(printf '%s\n' "${PAIRED[@]}" | sort -g | awk '{ v[NR] = $1 } END {
        printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    read -r cli_med cli_p90 cli_min cli_max <<<"$(stats "${CLI_MS[@]}")"
    read -r cl_med cl_p90 cl_min cl_max <<<"$(stats "${CLIENT_MS[@]}")"
    rss_kib=$(max_of "${CLI_RSS[@]}")
    client_rss_kib=$(max_of "${CLIENT_RSS[@]}")
    ratio=$(awk -v a="$cli_med" -v b="$cl_med" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
    rss_mib=$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')
    client_rss_mib=$(awk -v k="$client_rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')
    ROWS+=("$b|$cli_med|$cl_med|$ratio|$cli_p90|$cl_p90|$rss_mib|$client_rss_mib|$cli_min|$cl_min|$paired")
    if awk -v r="$ratio" -v g="$RATIO_GOAL" 'BEGIN { exit !(r <= g) }'; then RATIO_OK+=("$b $ratio")
    else RATIO_MISS+=("$b ${ratio}x"); fi
    ((rss_kib > RSS_MAX_ALL)) && RSS_MAX_ALL=$rss_kib
    echo
done

((${#ROWS[@]})) || die "no backend was reachable"

# --- report ----------------------------------------------------------------------

rss_all_mib=$(awk -v k="$RSS_MAX_ALL" 'BEGIN { printf "%.1f", k / 1024 }')
if ((${#RATIO_MISS[@]} == 0)); then ratio_line="met on every backend measured"
else ratio_line="MISSED on $(IFS=,; echo "${RATIO_MISS[*]}" | sed 's/,/, /g')"; fi
if awk -v m="$rss_all_mib" -v g="$RSS_GOAL_MIB" 'BEGIN { exit !(m < g) }'; then rss_line="met (max $rss_all_mib MiB)"
else rss_line="MISSED (max $rss_all_mib MiB)"; fi
goal_line="goals: ratio <= $RATIO_GOAL: $ratio_line; CLI peak RSS < $RSS_GOAL_MIB MiB: $rss_line"

fmt='%-9s | %13s | %16s | %18s | %8s | %10s | %20s | %12s\n'
printf "$fmt" backend "CLI median ms" "client median ms" "ratio (CLI/client)" "CLI p90" "client p90" "CLI peak RSS max MiB" "paired ratio"
printf "$fmt" --------- ------------- ---------------- ------------------ -------- ---------- -------------------- ------------
for row in "${ROWS[@]}"; do
    IFS='|' read -r b cm clm r cp clp rss _ _ _ pr <<<"$row"
    printf "$fmt" "$b" "$cm" "$clm" "${r}x" "$cp" "$clp" "$rss" "${pr}x"
done
echo "(ratio: CLI median / client median; paired ratio: median of the per-round CLI/client ratios)"
for b in "${SKIPPED[@]}"; do echo "skipped: $b unreachable"; done
echo
echo "$goal_line"

if [[ -n ${BENCH_OUT:-} ]]; then
    {
        echo "| backend | CLI median ms | client median ms | ratio (CLI/client) | CLI p90 ms | client p90 ms | CLI peak RSS max MiB | paired ratio | CLI min ms | client min ms | client peak RSS max MiB |"
        echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        for row in "${ROWS[@]}"; do
            IFS='|' read -r b cm clm r cp clp rss crss cmin clmin pr <<<"$row"
            echo "| $b | $cm | $clm | ${r}x | $cp | $clp | $rss | ${pr}x | $cmin | $clmin | $crss |"
        done
        for b in "${SKIPPED[@]}"; do echo "| $b | skipped: unreachable | | | | | | | | | |"; done
        echo
        echo "$ROUNDS rounds per backend (+$WARMUP warm-up); wall time in ms, median and nearest-rank p90;"
        echo "ratio = CLI median / client median; paired ratio = median of the per-round CLI/client ratios."
        echo
        echo "${goal_line^}"
    } >"$BENCH_OUT"
    echo "wrote $BENCH_OUT"
fi
