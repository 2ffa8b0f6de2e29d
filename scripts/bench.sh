#!/usr/bin/env bash
# The benchmark harness: every workload beside its peers, on PostgreSQL,
# MariaDB and SQLite, each on a fresh database filled with generated data
# (progress bars on stderr). Tables go to stdout and, together, to
# target/bench-report.md; each benchmark also writes its JSON to target/.
#
#   bash scripts/bench.sh                  # everything at full scale
#   BENCH_SCALE=small bash scripts/bench.sh
#
# W1-W3, W7: services (users 100k, sessions 1M at full scale)
# W4: ingest (batches 1 to 100k against COPY and sqlx push_values)
# W5: retention (1M rows; 5M on PostgreSQL)
# W6: online_migration (the session-security migration on 1M sessions)
# login: what one completed login costs
# and the migration runner's overhead against plain Migrator::up.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
report=target/bench-report.md
mkdir -p target
: > "$report"

run() {
  echo "## $1" | tee -a "$report"
  shift
  cargo bench -q --bench "$@" | tee -a "$report"
  echo | tee -a "$report"
}

run "W1-W3, W7: services" services -- --scale "${BENCH_SCALE:-full}"
run "W4: audit ingest" ingest
run "W5: retention" retention
run "W6: session-security migration on a large table" online_migration
run "Migration runner overhead" runner_overhead
run "Login: one completed login" login
echo "report: $report"
