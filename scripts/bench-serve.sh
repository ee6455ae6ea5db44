#!/usr/bin/env bash
# `fdb serve` under load, in one go: searches per second and latency with 1 client, 1 client
# while another enrols, 8 clients, and 8 clients while a ninth enrols; then the CLI's one-shot
# `fdb search` (a process per probe, the networks loaded each time).
# The gallery is the test fixtures' three people, two photos each; the probes are their fourth
# photos. Usage: scripts/bench-serve.sh [SECONDS] (default 20); FDB=path/to/fdb.
set -euo pipefail
cd "$(dirname "$0")/.."
FDB=${FDB:-target/release/fdb}
SECONDS_EACH=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/db
people=tests/fixtures/people
"$FDB" --db "$db" enroll $people/*/*_000[12].jpg >/dev/null
probes=($people/*/*_0004.jpg)

/usr/bin/time -v -o "$work/serve.time" "$FDB" --db "$db" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do grep -q http:// "$work/serve.out" 2>/dev/null && break; sleep 0.2; done
addr=$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$work/serve.out")
echo "== fdb serve at $addr ($(nproc) cores)"
"$FDB" bench serve --url "$addr" --clients 1 --seconds "$SECONDS_EACH" "${probes[@]}"
"$FDB" bench serve --url "$addr" --clients 1 --seconds "$SECONDS_EACH" --enrol "Colin_Powell=$people/Colin_Powell/Colin_Powell_0003.jpg" "${probes[@]}"
"$FDB" bench serve --url "$addr" --clients 8 --seconds "$SECONDS_EACH" "${probes[@]}"
"$FDB" bench serve --url "$addr" --clients 8 --seconds "$SECONDS_EACH" --enrol "Tony_Blair=$people/Tony_Blair/Tony_Blair_0003.jpg" "${probes[@]}"
# SIGTERM to the server itself (GNU time does not pass signals on), then time's report.
pkill -TERM -P "$server"
wait "$server" || true
grep -E "Maximum resident|Elapsed" "$work/serve.time" | sed 's/^\s*/server: /'

echo "== one-shot CLI: fdb search, one process per probe"
start=$(date +%s.%N)
n=0
for round in 1 2 3; do
  for p in "${probes[@]}"; do "$FDB" --db "$db" search "$p" >/dev/null 2>&1 || true; n=$((n + 1)); done
done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$n" 'BEGIN { printf "%d searches in %.1f s: %.2f/s, %.0f ms each\n", n, e - s, n / (e - s), 1000 * (e - s) / n }'
