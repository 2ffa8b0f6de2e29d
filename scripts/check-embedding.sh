#!/usr/bin/env bash
# The library alone: what an application gets with
#   gatehouse = { version = "0.1", default-features = false, features = ["<backend>"] }
# Checks that it builds without warnings on each backend by itself, and that
# its dependency tree holds none of the operator CLI's crates.
set -euo pipefail
cd "$(dirname "$0")/.."

# Crates only the CLI may pull in.
cli_only=(clap rpassword qrcode anyhow tracing-subscriber)
# sea-orm-migration 2.0.4 depends on tracing-subscriber unconditionally (it
# installs a subscriber in its own CLI); that one path is tolerated, no other.
tolerated_parent="sea-orm-migration"

for backend in sqlite postgres mysql; do
  echo "[embedding] cargo check -p gatehouse --no-default-features --features $backend"
  # `cargo rustc` puts -D warnings on gatehouse alone (RUSTFLAGS would
  # rebuild every dependency).
  cargo rustc -q -p gatehouse --lib --profile check \
    --no-default-features --features "$backend" -- -D warnings
done

tree_args=(-p gatehouse --no-default-features --features sqlite -e normal)
crates=$(cargo tree "${tree_args[@]}" --prefix none | sed 's/ .*//' | sort -u)
status=0
for crate in "${cli_only[@]}"; do
  grep -qx "$crate" <<<"$crates" || continue
  # Who depends on it directly, as `name vX.Y.Z`: the first level under it.
  parents=$(cargo tree "${tree_args[@]}" -i "$crate" --depth 1 --prefix depth \
    | sed -n 's/^1\([^ ]*\) .*/\1/p' | sort -u)
  if [[ "$crate" == tracing-subscriber && "$parents" == "$tolerated_parent" ]]; then
    echo "[embedding] note: $crate comes only through $tolerated_parent"
    continue
  fi
  echo "[embedding] FAIL: the library pulls $crate (through: ${parents//$'\n'/, })" >&2
  status=1
done

echo "[embedding] gatehouse --no-default-features --features sqlite, normal dependencies:"
echo "  $(wc -l <<<"$crates") crates; direct:"
cargo tree "${tree_args[@]}" --depth 1 --prefix none | tail -n +2 | sed 's/^/    /'
exit "$status"
