#!/usr/bin/env bash
# The test command: makes sure the database servers and the production
# topologies (a Galera cluster, PgBouncer, a hot standby) run and the tools
# are installed, then runs every test on SQLite, PostgreSQL and MariaDB and
# on each topology.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
# About a minute on a new machine (packages, three Galera nodes syncing); a few seconds when running.
bash scripts/topologies.sh start

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "[test] installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
if ! command -v sea-orm-cli >/dev/null 2>&1; then
  echo "[test] installing sea-orm-cli 2.0.4 (the tests run 'sea-orm-cli migrate' from the repository root)"
  cargo install sea-orm-cli --version 2.0.4 --locked
fi
export TEST_REQUIRE_SEA_ORM_CLI="${TEST_REQUIRE_SEA_ORM_CLI:-1}"

# The CLI tests run the built binaries, the migration bin included, and
# `sea-orm-cli migrate`, which builds the migration crate on its own. That
# build resolves dependency features for one crate, so it gets a target
# directory of its own instead of rebuilding the workspace's over and over.
cargo build --workspace --bins
export SEA_ORM_CLI_TARGET_DIR="$PWD/target/sea-orm-cli"
CARGO_TARGET_DIR="$SEA_ORM_CLI_TARGET_DIR" cargo build --manifest-path migration/Cargo.toml
# What nextest does not cover, each step timed, before the suite so that its
# summary closes the run. Times on a 2-core machine after the workspace build
# (first run / repeated run); about 9 min in all at first.
step() {
  local name=$1 start=$SECONDS
  shift
  echo "[test] $name"
  "$@"
  echo "[test] $name: $((SECONDS - start)) s"
}
# Doc tests: the crate front page's example per service, on in-memory SQLite (~40 s / ~10 s).
step "doc tests" cargo test --workspace --doc
# The API docs build without a warning or a broken link (~15 s).
step "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
# The library alone on each backend, and no CLI crate in its tree (~2 min / ~5 s).
step "embedding" bash scripts/check-embedding.sh
# The three crates package and build from their packages as published (~4 min / ~15 s: the
# packages build with their own profile, so their dependencies build again once).
step "package" cargo package -p gatehouse-entity -p gatehouse-migration -p gatehouse --allow-dirty
# An application made by sea-orm-cli can add all three crates (~4 min / ~5 s).
step "app workspace" bash scripts/check-app-workspace.sh

cargo nextest run --workspace --no-fail-fast "$@"

