#!/usr/bin/env bash
# What enrichment costs: 1,000,000 generated auth.log lines parsed into events alone, against
# parsed and passed through the IP and event tracers (the tracers on by default for sshd
# events); then the IP tracer's memory fed 1,000,000 distinct addresses.
#
#   bench/enrich.sh [LINES]      (default 1000000; seed 1)
#
# Needs python3. Runs `cargo bench -p vigil-enrich --bench enrich` (crates/enrich/benches/
# enrich.rs): both passes alternate five times and the best of each is kept, because the
# project's machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
seed=1
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/auth.log
echo "generating $lines lines (seed $seed)..." >&2
python3 ../shared/data/gen_authlog.py --lines "$lines" --seed "$seed" -o "$log"
cargo bench -q -p vigil-enrich --bench enrich -- "$log"
cargo bench -q -p vigil-enrich --bench enrich -- --memory
