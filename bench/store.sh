#!/usr/bin/env bash
# End to end: `vigil run` following a generated auth.log from its beginning into the default
# SQLite store, as fast as it can — tail, parse, bus, store listener, commit, acknowledgement.
# Reports lines stored per second of wall-clock time and the agent's CPU time.
#
#   bench/store.sh [LINES]      (default 1000000; seed 1)
#
# Needs: python3. The library-level figure (SqliteStore::write alone) comes from
# `cargo bench -p vigil-store --bench ingest`.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
seed=1

command -v python3 >/dev/null || { echo "missing python3: apt-get install python3" >&2; exit 2; }
cargo build --release -q -p vigil-cli
vigil=$PWD/target/release/vigil
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
echo "generating $lines lines (seed $seed)..." >&2
python3 ../shared/data/gen_authlog.py --lines "$lines" --seed "$seed" -o "$tmp/auth.log"
cat >"$tmp/vigil.toml" <<TOML
[agent]
state_dir = "$tmp/state"
[sources.agent]
enabled = false
[sources.system]
enabled = false
[sources.network]
enabled = false
[detectors.report]
enabled = false
[listeners.log.default]
enabled = false
[sources.files.auth]
paths = ["$tmp/auth.log"]
start_at = "beginning"
parser = "auto"
max_in_flight_lines = 50000
[stores.sqlite]
batch_size = 10000
TOML

start=$(date +%s.%N)
"$vigil" -c "$tmp/vigil.toml" -q run &
pid=$!
stored=0
while [ "$stored" -lt "$lines" ]; do
  sleep 0.5
  stored=$("$vigil" -c "$tmp/vigil.toml" query --csv \
    "SELECT count(*) FROM events WHERE kind = 'log'" 2>/dev/null | tail -n 1 | tr -d '\r' || echo 0)
  case $stored in ''|*[!0-9]*) stored=0 ;; esac
done
end=$(date +%s.%N)
cpu_ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
kill -TERM "$pid"
wait "$pid" || true
pid=
ticks=$(getconf CLK_TCK)
python3 - "$lines" "$start" "$end" "$cpu_ticks" "$ticks" <<'PY'
import sys
lines, start, end, cpu, hz = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
wall = end - start
cpu_s = cpu / hz
print(f"{lines} lines stored in {wall:.2f} s wall: {lines / wall:,.0f} lines/s; "
      f"agent CPU {cpu_s:.2f} s: {lines / cpu_s:,.0f} lines per CPU-second")
PY
"$vigil" db info --db "$tmp/state/vigil.db"
