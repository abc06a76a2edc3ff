#!/usr/bin/env bash
# The Parquet read-back test: pq_shapes writes files of many shapes with
# souk's writer, then two independent readers (hyparquet with
# hyparquet-compressors, and DuckDB), installed from npm into tests/parquet
# with `npm ci`, read every value and every column chunk's statistics back
# (parquet.test.mjs).  Then the SkyBlock module's own hourly summaries,
# rebuilt by `souk skyblock replay` from the captured pages, are read back
# the same way, with their hive layout and rows checked against the
# captures (summary.test.mjs).  The files stay in build/test-output/parquet/.
#   tests/parquet/run.sh [BUILD_DIR]     (default: build/test)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build/test}
out="$root/build/test-output/parquet"
rm -rf "$out"
mkdir -p "$out"
"$build/tests/parquet/pq_shapes" "$out"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$here" && SOUK_PQ_DIR="$out" node --test parquet.test.mjs)
sky="$root/build/test-output/parquet-summaries"
rm -rf "$sky"
mkdir -p "$sky"
node "$here/fixture_pages.mjs" pages "$sky/pages"
"$build/souk" skyblock replay "$sky/pages" "$sky/out" >"$sky/replay.txt"
node "$here/fixture_pages.mjs" expect "$sky/replay.txt" "$sky/out" "$sky/expect.json"
(cd "$here" && SOUK_PQ_SUMMARIES="$sky/out" SOUK_PQ_EXPECT="$sky/expect.json" node --test summary.test.mjs)
