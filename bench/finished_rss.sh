#!/usr/bin/env bash
# The broker's resident memory through a run of finished jobs: 60 sum jobs (JOBS=N for another
# number) of 16384 slices each (a 64 MiB f32 array in 4 KiB slices) on one worker, RSS printed
# every 20 jobs. Any argument is passed to zwq-broker, e.g. --max-finished-slices 131072
# (docs/RELIABILITY.md, "Defaults").
# With --journal DIR (a directory that does not exist yet; removed at exit) the journal's size is
# printed too, and at the end the broker's rewrites of it (--journal-rewrite-bytes).
#
#   bench/finished_rss.sh [zwq-broker options]      (after scripts/build; ZWQ_BIN_DIR: binaries)
#
# Local only: an ipc endpoint in a private directory and a /dev/shm array, both removed at exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZWQ_BIN_DIR:-$root/build/bin}
dir=$(mktemp -d /tmp/zwq-rss-XXXXXX)
array="zwq-rss-$$"
pids=()
journal=""
prev=""
for a in "$@"; do
  [ "$prev" = "--journal" ] && journal=$a
  case "$a" in --journal=*) journal=${a#--journal=} ;; esac
  prev=$a
done
if [ -n "$journal" ] && [ -e "$journal" ]; then
  echo "finished_rss: $journal exists; give a new directory" >&2
  exit 2
fi
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$bin/zwq" array rm "$array" >/dev/null 2>&1 || true
  rm -rf "$dir"
  if [ -n "$journal" ]; then rm -rf "$journal"; fi
}
trap cleanup EXIT

export ZWQ_BROKER="ipc://$dir/control"
"$bin/zwq" array create "$array" --dtype f32 -n 16777216 --fill arange >/dev/null
level=warn
if [ -n "$journal" ]; then level=info; fi
"$bin/zwq-broker" --bind "$ZWQ_BROKER" --ready-file "$dir/ready" --log-level "$level" "$@" \
  >"$dir/broker.log" 2>&1 &
broker=$!
pids+=("$broker")
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.05; done
[ -s "$dir/ready" ] || { echo "finished_rss: the broker did not start" >&2; exit 1; }
"$bin/zwq-worker" --log-level warn &
pids+=("$!")

state() {
  printf 'broker RSS after %s jobs: %s kB' "$1" "$(awk '/^VmRSS/ {print $2}' "/proc/$broker/status")"
  if [ -n "$journal" ]; then printf ', journal %s bytes' "$(stat -c %s "$journal/journal.zwq")"; fi
  echo
}
state 0
for i in $(seq "${JOBS:-60}"); do
  "$bin/zwq" submit -k sum -i "shm:$array" --slice 1024 --timeout 60 --json >/dev/null
  if [ $((i % 20)) = 0 ]; then state "$i"; fi
done
if [ -n "$journal" ]; then
  grep -o 'journal rewritten.*' "$dir/broker.log" || echo "journal never rewritten"
fi
