#!/usr/bin/env bash
# Restore of persisted bans into nftables (issue 7: 100,000 bans in ≤ 1 s), beside a plain
# `nft -f` of the same 100,000 elements in the same run, each in a fresh network namespace.
#
#   bench/bans.sh [COUNT] [RUNS]      (defaults 100000 and 5; needs root, nftables, iproute2)
#
# Vigil's figure is the whole start-up path of the `restore_bench` example: read and parse the
# state file, load it into the ban manager, build the restore and apply it with the nftables
# action (one `nft -f -` batch that recreates the table, its four sets and chain). The peer is
# `nft -f` of a script holding only a table, two timeout sets and the same elements — the floor
# any restore through nft pays. Each run uses a new namespace, so both start from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100000}
runs=${2:-5}

[[ $(id -u) -eq 0 ]] || { echo "bench/bans.sh needs root (network namespaces, nftables)" >&2; exit 2; }
for tool in nft ip; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nftables iproute2" >&2; exit 2; }
done

cargo build --release -q -p vigil-respond --example restore_bench
bench=$PWD/target/release/examples/restore_bench
tmp=$(mktemp -d)
ns=vigil-bench-$$
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"' EXIT

for run in $(seq "$runs"); do
  ip netns add "$ns"
  "$bench" --netns "$ns" --count "$count" --plain "$tmp/plain.nft"
  v4=$(ip netns exec "$ns" nft -j list set inet vigil banned_v4 | grep -o '"val"' | wc -l)
  v6=$(ip netns exec "$ns" nft -j list set inet vigil banned_v6 | grep -o '"val"' | wc -l)
  ip netns del "$ns"
  ip netns add "$ns"
  start=$(date +%s.%N)
  ip netns exec "$ns" nft -f "$tmp/plain.nft"
  end=$(date +%s.%N)
  ip netns del "$ns"
  printf 'run %d: in the sets: %d IPv4 + %d IPv6; plain nft -f: %.3f s\n' "$run" "$v4" "$v6" \
    "$(awk "BEGIN { print $end - $start }")"
done
