#!/usr/bin/env bash
# The benchmarks (`make bench`): build the release binary, then run every
# benchmark in bench/.  Each prints its figures; bench/out/ keeps them as
# JSON (git-ignored).  See bench/README.md.
#   scripts/bench.sh [extra arguments for bench/gateway_bench.py]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
JOBS=${JOBS:-$(nproc)}
BUILD=build/release
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n==== %s ====\n' "$*"; }

step "build (release: RelWithDebInfo)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOUK_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS"

status=0

# Micro-benchmarks built by CMake (bench/CMakeLists.txt), when present.
bench_json=""
for cand in "$BUILD/bench/bench_json" "$BUILD/bench_json"; do
  if [ -x "$cand" ]; then bench_json=$cand; break; fi
done
if [ -n "$bench_json" ]; then
  step "JSON benchmark ($bench_json)"
  "$bench_json" || status=$?
else
  step "JSON benchmark: no bench_json binary in $BUILD, skipped"
fi

if [ -x "$BUILD/bench/dashboard_bench" ]; then
  step "dashboard benchmark (10,000 players on SQLite)"
  "$BUILD/bench/dashboard_bench" || status=$?
fi

if [ -x "$BUILD/bench/skyblock_decode_bench" ]; then
  step "SkyBlock decoding: base64, gunzip, NBT and item key per auction (bench/skyblock_decode_bench.c)"
  "$BUILD/bench/skyblock_decode_bench" || status=$?
fi

if [ -x "$BUILD/bench/skyblock_parquet_bench" ]; then
  step "SkyBlock summaries: one hour for 5,000 item keys as Parquet (bench/skyblock_parquet_bench.c)"
  "$BUILD/bench/skyblock_parquet_bench" || status=$?
fi

if [ -x "$BUILD/bench/skyblock_sweep_bench" ]; then
  step "SkyBlock sweep: 66 x 1,000 auctions, page 0 to the alert, steady RSS"
  "$BUILD/bench/skyblock_sweep_bench" || status=$?
  step "SkyBlock sweep in Python's standard library, for scale"
  "$PY" bench/skyblock_sweep_py.py 10 --json bench/out/skyblock_sweep_py.json || status=$?
fi

if [ -x "$BUILD/souk" ]; then
  step "SkyBlock steady RSS: souk against the fake Hypixel, a sweep a simulated minute (bench/skyblock_rss.py)"
  "$PY" bench/skyblock_rss.py --souk-bin "$BUILD/souk" --json bench/out/skyblock_rss.json || status=$?
fi

if compgen -G "$BUILD/bench/rss_floor_*" >/dev/null; then
  step "library floor: RSS of souk's shared libraries alone (bench/rss_floor.c)"
  printf '%-22s %7s %7s %7s   %s\n' "libraries" "RSS MB" "anon" "files" "largest (MB)"
  for f in "$BUILD"/bench/rss_floor_*; do
    "$f" || status=$?
  done
fi

if [ -x "$BUILD/bench/wakeup_floor" ]; then
  step "wake-up floor: one event per wake-up, no work done (bench/wakeup_floor.c)"
  "$BUILD/bench/wakeup_floor" || status=$?
fi

export SOUK_BIN="${SOUK_BIN:-$PWD/$BUILD/souk}"
if [ "$#" -gt 0 ]; then
  step "gateway benchmark (souk, then discord.py against the fake Discord): $*"
  "$PY" bench/gateway_bench.py "$@" || status=$?
else
  # Both deliveries: one event per socket write (a client that keeps up
  # is woken for each, see the wake-up floor above), and 32 per write (the
  # cost of processing the events).
  step "gateway benchmark, one event per write (souk, then discord.py against the fake Discord)"
  "$PY" bench/gateway_bench.py --batch 1 --out bench/out/gateway.json || status=$?
  step "gateway benchmark, 32 events per write (souk, then discord.py against the fake Discord)"
  "$PY" bench/gateway_bench.py --batch 32 --out bench/out/gateway-batch32.json || status=$?
  # The other transport compressions, souk alone: zstd-stream, and plain
  # frames (a gateway proxy that ignores compress, or compression off).
  step "gateway benchmark, zstd-stream, 32 events per write (souk)"
  "$PY" bench/gateway_bench.py --clients souk --batch 32 --compress zstd-stream \
    --out bench/out/gateway-zstd.json || status=$?
  step "gateway benchmark, plain frames, 32 events per write (souk)"
  "$PY" bench/gateway_bench.py --clients souk --batch 32 --compress none \
    --out bench/out/gateway-plain.json || status=$?
  # souk's own memory (RSS minus the library floor) with every module
  # loaded, at 100, 1,000 and 2,500 guilds (the scale-out process size),
  # and at 1,000 with /daily, /stats channels and /settings set run in
  # every guild (what using the features costs);
  # the cost per guild, channel, member and cached member; and, under
  # heaptrack, which module or file holds the heap and how much per guild.
  step "gateway memory: souk at 100, 1,000 and 2,500 guilds, the cost per guild, channel and member, the heap by owner"
  "$PY" bench/gateway_bench.py --repeat 1 --batch 32 \
    --scales 100x10x100,1000x10x100,1000x20x100,1000x10x200,1000x10x100+members,1000x10x100+use,2500x10x100,2500x10x100+members \
    --attribute --out bench/out/gateway-memory.json || status=$?
  # issue 15: 10 processes, one shard of 2,500 guilds each, one PostgreSQL
  # and one Redis; souk's own memory per process, member cache off and on.
  step "scale-out memory: 10 processes x 2,500 guilds (bench/cluster_bench.py)"
  "$PY" bench/cluster_bench.py --out bench/out/cluster.json || status=$?
fi

exit "$status"
