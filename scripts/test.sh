#!/usr/bin/env bash
# The test command: makes sure the database servers run and the tools are
# installed, then runs every test on SQLite, PostgreSQL and MariaDB.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

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
cargo nextest run --workspace --no-fail-fast "$@"
