#!/usr/bin/env bash
# Speed, memory and correctness of `vigil parse` on a generated auth.log, side by side with its
# peers in the same run: fail2ban-regex (the sshd filter), sshguard's sshg-parser, and
# `grep -c 'Failed password'` as the floor of what reading the file costs.
#
#   bench/parse.sh [LINES]      (default 1000000; seed 1)
#
# Needs: python3, hyperfine, fail2ban, sshguard, GNU time (apt-get install python3 hyperfine
# fail2ban sshguard time). Wall times come from hyperfine (warm page cache); CPU time (user +
# sys) and peak RSS from /usr/bin/time -v, one run each. Ratios use lines/s by wall time and,
# because the project's machines are shared and busy, also by CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
seed=1

for tool in python3 hyperfine fail2ban-regex /usr/libexec/sshguard/sshg-parser /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install python3 hyperfine fail2ban sshguard time" >&2
    exit 2
  }
done

cargo build --release -q -p vigil-cli
vigil=$PWD/target/release/vigil
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/auth.log
echo "generating $lines lines (seed $seed)..." >&2
python3 ../shared/data/gen_authlog.py --lines "$lines" --seed "$seed" -o "$log" \
  --summary "$tmp/summary.json"
# Year-less times: complete them against the generator's own week, in UTC.
export TZ=UTC
now=2026-11-23T00:00:00Z

vigil_cmd=("$vigil" parse --stats --tz UTC --now "$now" "$log")
grep_cmd=(grep -c 'Failed password' "$log")
f2b_cmd=(fail2ban-regex "$log" /etc/fail2ban/filter.d/sshd.conf)

# Wall time: hyperfine, several runs for the fast tools, one for fail2ban-regex. Output goes to
# a file, not /dev/null: GNU grep stops at the first match when it sees /dev/null.
hyperfine --warmup 2 --runs 10 --export-json "$tmp/fast.json" \
  -n vigil "${vigil_cmd[*]} > $tmp/vigil.count" \
  -n grep "grep -c 'Failed password' $log > $tmp/grep.count" >&2
hyperfine --warmup 1 --runs 5 --export-json "$tmp/sshg.json" \
  -n sshg-parser "/usr/libexec/sshguard/sshg-parser < $log > /dev/null" >&2
hyperfine -N --runs 1 --export-json "$tmp/f2b.json" -n fail2ban-regex "${f2b_cmd[*]}" >&2

# CPU time and peak RSS, one run each.
measure() { # name command...
  local name=$1
  shift
  /usr/bin/time -v -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>/dev/null || true
}
measure vigil "${vigil_cmd[@]}"
measure grep "${grep_cmd[@]}"
/usr/bin/time -v -o "$tmp/sshg-parser.time" /usr/libexec/sshguard/sshg-parser <"$log" >"$tmp/sshg-parser.out"
measure fail2ban-regex "${f2b_cmd[@]}"

# Correctness: failures per address (fail2ban normal mode: failed_password,
# failed_password_invalid, invalid_user, max_auth_exceeded) against the generator's summary.
"$vigil" parse --json --parser sshd --tz UTC --now "$now" "$log" >"$tmp/vigil.jsonl"

python3 - "$tmp" "$lines" <<'EOF'
import ipaddress, json, re, sys
tmp, lines = sys.argv[1], int(sys.argv[2])

def norm(ip):
    a = ipaddress.ip_address(ip)
    if a.version == 6 and a.ipv4_mapped:
        return str(a.ipv4_mapped)
    return str(a)

rows = {}
for name, file in [("vigil", "fast"), ("grep", "fast"), ("sshg-parser", "sshg"), ("fail2ban-regex", "f2b")]:
    for r in json.load(open(f"{tmp}/{file}.json"))["results"]:
        if r["command"] == name:
            rows[name] = {"wall": r["mean"]}
for name in rows:
    text = open(f"{tmp}/{name}.time").read()
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    rows[name].update(cpu=user + sys_, rss=rss / 1024)

print(f"\n{lines:,} lines (gen_authlog.py --seed 1), warm cache\n")
print(f"{'tool':<16} {'wall s':>8} {'lines/s (wall)':>15} {'cpu s':>7} {'lines/s (cpu)':>14} {'peak RSS':>10}")
for name, r in rows.items():
    print(f"{name:<16} {r['wall']:>8.3f} {lines / r['wall']:>15,.0f} {r['cpu']:>7.2f} "
          f"{lines / max(r['cpu'], 0.01):>14,.0f} {r['rss']:>7.1f} MiB")
v = rows["vigil"]
print()
for peer, floor in [("fail2ban-regex", "≥ 100×"), ("sshg-parser", "≥ 3×"), ("grep", "≥ 0.25×")]:
    p = rows[peer]
    print(f"vigil vs {peer:<15} {p['wall'] / v['wall']:>8.2f}× by wall time, "
          f"{p['cpu'] / max(v['cpu'], 0.01):>8.2f}× by CPU time   (floor {floor})")
print(f"vigil peak RSS {v['rss']:.1f} MiB (floor ≤ 20 MB)")

summary = json.load(open(f"{tmp}/summary.json"))
want = {}
for ip, n in summary["failures_per_ip"].items():
    want[norm(ip)] = want.get(norm(ip), 0) + n
failures = {"failed_password", "failed_password_invalid", "invalid_user", "max_auth_exceeded"}
got = {}
with open(f"{tmp}/vigil.jsonl") as f:
    for line in f:
        o = json.loads(line)
        if o["action"] in failures:
            got[o["ip"]] = got.get(o["ip"], 0) + 1
decoys = {norm(ip) for ip in summary["decoy_ips"]}
wrong = {ip for ip in set(want) | set(got) if want.get(ip) != got.get(ip)}
print(f"\ncorrectness (failures per address, normal mode): {len(want):,} addresses, "
      f"{sum(want.values()):,} failures expected, {sum(got.values()):,} counted by vigil, "
      f"{len(wrong)} addresses differ")
over = sum(max(0, got.get(ip, 0) - want.get(ip, 0)) for ip in decoys)
print(f"failures credited beyond truth to decoy (legitimate) addresses: vigil {over}")
# sshguard's output: "service address family dangerousness" per attack.
sshg = {}
for line in open(f"{tmp}/sshg-parser.out"):
    parts = line.split()
    if len(parts) >= 2:
        sshg[parts[1]] = sshg.get(parts[1], 0) + 1
legit_hits = sum(sshg.get(ip, 0) for ip in decoys)
legit_truth = sum(want.get(ip, 0) for ip in decoys)
print(f"sshg-parser attacks credited to legitimate users' addresses: {legit_hits} "
      f"(their real failures: {legit_truth})")
sys.exit(1 if wrong else 0)
EOF
