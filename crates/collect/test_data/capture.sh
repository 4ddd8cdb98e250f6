#!/usr/bin/env bash
# Captures a /proc tree as a collector fixture: ./capture.sh NAME (e.g. debian12-6.18).
#
# Copies the system-wide files the collectors read, and for a few processes (PID 1, kthreadd,
# this script's shell and the odd processes it starts) their stat, status, cmdline, comm, io,
# exe link and fd links. The odd processes cover what the collectors must survive or flag:
# a name with spaces and parentheses, an executable deleted after start, an executable in a
# world-writable directory, a name that does not match its executable, and a TCP listener on
# 127.0.0.1 (socket inode -> pid). Run as root so every process is readable.
set -euo pipefail
name=${1:?usage: capture.sh NAME}
out="$(cd "$(dirname "$0")" && pwd)/$name"
rm -rf "$out"
mkdir -p "$out/net"
work=$(mktemp -d /tmp/vigil-capture.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work" "/tmp/my (odd) name" /tmp/vigil-deleted; }
trap cleanup EXIT

cp /bin/sleep "/tmp/my (odd) name"
"/tmp/my (odd) name" 300 & pids+=($!)
cp /bin/sleep /tmp/vigil-deleted
/tmp/vigil-deleted 300 & pids+=($!)
# A Python process that names itself sshd (prctl PR_SET_NAME) and listens on 127.0.0.1.
python3 -c 'import ctypes, socket, time
ctypes.CDLL(None).prctl(15, b"sshd", 0, 0, 0)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); time.sleep(300)' & pids+=($!)
sleep 0.5
rm /tmp/vigil-deleted

for file in stat meminfo loadavg mounts diskstats uptime; do cat "/proc/$file" >"$out/$file"; done
for file in dev tcp tcp6 udp udp6; do cat "/proc/net/$file" >"$out/net/$file" 2>/dev/null || true; done

for pid in 1 2 $$ "${pids[@]}"; do
  src=/proc/$pid dst=$out/$pid
  [[ -d $src ]] || continue
  mkdir -p "$dst/fd"
  for file in stat status cmdline comm io; do cat "$src/$file" >"$dst/$file" 2>/dev/null || true; done
  target=$(readlink "$src/exe" 2>/dev/null) && ln -s "$target" "$dst/exe"
  for fd in "$src"/fd/*; do
    [[ -e $fd || -L $fd ]] || continue
    ln -s "$(readlink "$fd" 2>/dev/null)" "$dst/fd/$(basename "$fd")" 2>/dev/null || true
  done
done
echo "captured $out (pids 1 2 $$ ${pids[*]})"
