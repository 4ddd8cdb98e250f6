#!/usr/bin/env bash
# `vigil replay` (default sshd jail: parse → detectors → dry-run bans) beside `fail2ban-regex`
# with fail2ban's unchanged sshd.conf, on the same generated auth.log, in the same run:
# lines/s, peak RSS, ratio, and the bans checked against the generator's expected_bans; then
# `vigil replay --store` (the same replay back-filling a fresh SQLite database, issue 8).
#
#   bench/replay.sh [LINES]      (default 1000000)
#
# The log is `gen_authlog.py --lines LINES --seed 1 --summary`. Peak RSS is GNU time's maximum
# resident set size. Installs fail2ban (for fail2ban-regex) and GNU time through apt-get when
# run as root.
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
python3 "$shared/data/gen_authlog.py" --lines "$lines" --seed 1 -o "$tmp/auth.log" \
  --summary "$tmp/summary.json"

run() { # name, command...
  local name=$1
  shift
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  read -r secs user sys kib <"$tmp/time"
  awk -v n="$name" -v s="$secs" -v u="$user" -v y="$sys" -v k="$kib" -v l="$lines" \
    'BEGIN { printf "%-16s %8.2f s wall %12.0f lines/s %8.2f s CPU %8.1f MiB peak RSS\n", n, s, l / s, u + y, k / 1024 }'
  echo "$secs" >"$tmp/$name.secs"
}

echo "input: gen_authlog.py --lines $lines --seed 1; load: $(cut -d' ' -f1-3 /proc/loadavg)"
run vigil ./target/release/vigil replay --json --tz UTC --now 2026-12-01T00:00:00Z "$tmp/auth.log"
run vigil-store ./target/release/vigil replay --json --tz UTC --now 2026-12-01T00:00:00Z \
  --store --db "$tmp/vigil.db" "$tmp/auth.log"
run fail2ban-regex fail2ban-regex "$tmp/auth.log" "$filter"
awk -v v="$(cat "$tmp/vigil-store.secs")" \
  'BEGIN { printf "vigil replay --store (back-fill into SQLite): %.2f s (target: <= 5 s for 1,000,000 lines)\n", v }'
tail -1 "$tmp/vigil-store.err"
awk -v v="$(cat "$tmp/vigil.secs")" -v f="$(cat "$tmp/fail2ban-regex.secs")" \
  'BEGIN { printf "ratio: vigil replay is %.1fx fail2ban-regex in lines/s (target: >= 500000 lines/s)\n", f / v }'
grep -Eo '[0-9]+ matched' "$tmp/fail2ban-regex.out" | head -1 | sed 's/^/fail2ban-regex: /' || true
python3 - "$tmp/vigil.out" "$tmp/summary.json" <<'PY'
import ipaddress, json, sys
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))["expected_bans"]["normal"]["ips"]
def canon(ip):
    a = ipaddress.ip_address(ip)
    return str(a.ipv4_mapped) if a.version == 6 and a.ipv4_mapped else str(a)
first = {}
for ban in got["bans"]:
    first.setdefault(ban["ip"], ban["at"])
expected = {canon(x["ip"]): x["first_ban"] + "Z" for x in want}
verdict = "equal" if first == expected else "DIFFERENT"
print(f"vigil replay: {got['lines']} lines, {got['events']} events, {got['findings_total']} findings, "
      f"{len(got['bans'])} bans of {len(first)} addresses; expected_bans ({len(expected)}): {verdict}")
PY
