#!/usr/bin/env bash
# `vigil filter-test` with fail2ban's unchanged sshd.conf beside `fail2ban-regex` with the same
# filter file, on the same generated auth.log, in the same run: lines/s, peak RSS, ratio.
#
#   bench/filter-test.sh [LINES]      (default 1000000)
#
# The log is `gen_authlog.py --lines LINES --seed 1`. Both tools print their summary; the
# matched-line counts are shown side by side. Peak RSS is GNU time's maximum resident set size.
# Installs fail2ban (for fail2ban-regex) and GNU time through apt-get when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
shared=../shared
filter=$shared/conformance/fail2ban/filter.d/sshd.conf

# shellcheck source=bench/lib.sh
source bench/lib.sh
require fail2ban-regex=fail2ban /usr/bin/time=time

cargo build --release -q -p vigil-cli
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$shared/data/gen_authlog.py" --lines "$lines" --seed 1 -o "$tmp/auth.log"

run() { # name, command...
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  read -r secs kib <"$tmp/time"
  local matched
  matched=$(grep -Eo '[0-9]+ matched' "$tmp/$name.out" | head -1 || true)
  awk -v n="$name" -v s="$secs" -v k="$kib" -v l="$lines" -v m="$matched" \
    'BEGIN { printf "%-16s %8.2f s %12.0f lines/s %8.1f MiB peak RSS   %s\n", n, s, l / s, k / 1024, m }'
  echo "$secs" >"$tmp/$name.secs"
}

echo "input: gen_authlog.py --lines $lines --seed 1; filter: $filter (unchanged)"
run vigil ./target/release/vigil filter-test "$tmp/auth.log" "$filter"
run fail2ban-regex fail2ban-regex "$tmp/auth.log" "$filter"
awk -v v="$(cat "$tmp/vigil.secs")" -v f="$(cat "$tmp/fail2ban-regex.secs")" \
  'BEGIN { printf "ratio: vigil filter-test is %.1fx fail2ban-regex in lines/s (floor 30x)\n", f / v }'
