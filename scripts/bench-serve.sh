#!/usr/bin/env bash
# `fdb serve` under load, in one go. With searches one at a time (--batch 1) and sharing
# batches (--batch 8): searches per second and latency for 1 client and for 8; one at a time (the
# default), also while one more client enrols; then the CLI's one-shot `fdb search` (a process per probe, the
# networks loaded each time). The gallery is the test fixtures' three people, two photos each;
# the probes are their fourth photos. Usage: scripts/bench-serve.sh [SECONDS] (default 20);
# FDB=path/to/fdb.
set -euo pipefail
cd "$(dirname "$0")/.."
FDB=${FDB:-target/release/fdb}
SECONDS_EACH=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/db
people=tests/fixtures/people
"$FDB" --db "$db" enroll $people/*/*_000[12].jpg >/dev/null 2>&1
probes=($people/*/*_0004.jpg)
bench() { "$FDB" bench serve --url "$addr" --seconds "$SECONDS_EACH" "$@" "${probes[@]}"; }

for batch in 1 8; do
  /usr/bin/time -v -o "$work/serve.time" "$FDB" --db "$db" serve --listen 127.0.0.1:0 --batch "$batch" >"$work/serve.out" 2>"$work/serve.err" &
  server=$!
  for _ in $(seq 150); do grep -q http:// "$work/serve.out" 2>/dev/null && break; sleep 0.2; done
  addr=$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$work/serve.out")
  echo "== fdb serve --batch $batch at $addr ($(nproc) cores)"
  bench --clients 1
  bench --clients 8
  if [ "$batch" = 1 ]; then
    bench --clients 1 --enrol "Colin_Powell=$people/Colin_Powell/Colin_Powell_0003.jpg"
    bench --clients 8 --enrol "Tony_Blair=$people/Tony_Blair/Tony_Blair_0003.jpg"
  fi
  # SIGTERM to the server itself (GNU time does not pass signals on), then time's report.
  pkill -TERM -P "$server"
  wait "$server" || true
  grep -E "Maximum resident" "$work/serve.time" | sed 's/^\s*/server: /'
done

echo "== one-shot CLI: fdb search, one process per probe"
start=$(date +%s.%N)
n=0
for round in 1 2 3; do
  for p in "${probes[@]}"; do "$FDB" --db "$db" search "$p" >/dev/null 2>&1 || true; n=$((n + 1)); done
done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$n" 'BEGIN { printf "%d searches in %.1f s: %.2f/s, %.0f ms each\n", n, e - s, n / (e - s), 1000 * (e - s) / n }'
