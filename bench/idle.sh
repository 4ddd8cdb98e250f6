#!/usr/bin/env bash
# Idle cost of the agent: CPU percent and resident memory of `vigil run` on the defaults, doing
# nothing but its own health checks, over a fixed window; and the same for
# prometheus-node-exporter when it is installed (a peer host agent), in the same run.
#
#   bench/idle.sh [SECONDS]      (default 60)
#
# CPU percent = (utime + stime ticks consumed during the window) / (window × ticks per second).
# RSS = VmRSS at the end of the window; peak = VmHWM.
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-60}
cargo build --release -q -p vigil-cli
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
hz=$(getconf CLK_TCK)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

measure() { # name pid
  local name=$1 pid=$2
  sleep 2 # let start-up finish before the window opens
  local t0; t0=$(ticks "$pid")
  sleep "$window"
  local t1; t1=$(ticks "$pid")
  local rss hwm
  rss=$(kib "$pid" VmRSS); hwm=$(kib "$pid" VmHWM)
  awk -v n="$name" -v d=$((t1 - t0)) -v w="$window" -v hz="$hz" -v r="$rss" -v h="$hwm" \
    'BEGIN { printf "%-28s cpu %6.3f %%   rss %6.1f MiB   peak rss %6.1f MiB   (%d s window)\n", n, 100 * d / (w * hz), r / 1024, h / 1024, w }'
}

VIGIL_AGENT__STATE_DIR="$tmp/state" ./target/release/vigil -q run &
pids+=($!)
measure "vigil run (defaults)" "${pids[0]}" &
measures=($!)

if command -v prometheus-node-exporter >/dev/null; then
  prometheus-node-exporter --web.listen-address=127.0.0.1:19100 >/dev/null 2>&1 &
  pids+=($!)
  measure "prometheus-node-exporter" "${pids[1]}" &
  measures+=($!)
else
  echo "(prometheus-node-exporter is not installed: apt-get install prometheus-node-exporter)"
fi
wait "${measures[@]}"
