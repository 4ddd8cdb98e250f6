#!/usr/bin/env bash
# CPU cost of one full host collection cycle (system + network + every process + every
# connection) beside prometheus-node-exporter's cost of one /metrics scrape, in the same run;
# then the same with 1,000 extra processes running.
#
#   bench/collect.sh [N]      (default 200 cycles and 200 scrapes)
#
# Vigil: `cargo run --release -p vigil-collect --example cycle -- N` (utime + stime of the
# collecting process over N cycles, after one warm-up cycle). node_exporter (Debian's
# prometheus-node-exporter, default collectors, on 127.0.0.1:19101): utime + stime of its
# process over N sequential scrapes of /metrics with curl, after one warm-up scrape.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
command -v prometheus-node-exporter >/dev/null ||
  { echo "prometheus-node-exporter is needed: apt-get install prometheus-node-exporter" >&2; exit 2; }
cargo build --release -q -p vigil-collect --example cycle
hz=$(getconf CLK_TCK)
pids=()
extra=()
cleanup() {
  kill "${pids[@]}" "${extra[@]}" 2>/dev/null || true
  wait "${pids[@]}" "${extra[@]}" 2>/dev/null || true
}
trap cleanup EXIT

prometheus-node-exporter --web.listen-address=127.0.0.1:19101 >/dev/null 2>&1 &
exporter=$!
pids+=("$exporter")
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:19101/metrics && break; sleep 0.1; done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

scrape_ms() { # ms of node_exporter CPU per scrape over N scrapes
  curl -sf -o /dev/null http://127.0.0.1:19101/metrics
  local t0 t1
  t0=$(ticks "$exporter")
  for _ in $(seq "$n"); do curl -sf -o /dev/null http://127.0.0.1:19101/metrics; done
  t1=$(ticks "$exporter")
  awk -v d=$((t1 - t0)) -v n="$n" -v hz="$hz" 'BEGIN { printf "%.3f", 1000 * d / hz / n }'
}

row() { # label
  local vigil_line vigil_ms exporter_ms
  vigil_line=$(./target/release/examples/cycle "$n")
  vigil_ms=${vigil_line%% ms*}
  exporter_ms=$(scrape_ms)
  printf '%-26s vigil %8s ms/cycle   node_exporter %8s ms/scrape   ratio %s\n' "$1" "$vigil_ms" \
    "$exporter_ms" "$(awk -v a="$vigil_ms" -v b="$exporter_ms" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  echo "    vigil: $vigil_line"
}

echo "host: $(nproc) CPUs, $(ls -d /proc/[0-9]* | wc -l) processes, kernel $(uname -r)"
row "as is"
for _ in $(seq 1000); do sleep 600 & extra+=($!); done
sleep 1
row "with 1,000 extra processes"
