#!/usr/bin/env bash
# The real prometheus-postgres-exporter (Debian's) scraping
# contrib/prometheus-postgres-exporter/lifecycle-queries.yaml against the
# benchmark database as it is (run after bench/dba.sh: DBA_USERS users):
# three scrapes of /metrics, each timed at the client, and the exporter's
# own pg_exporter_last_scrape_duration_seconds; the goal is under 1 s (a
# Prometheus scrape times out after 10 s by default).  The exporter runs
# as a role that is a member of lifecycle_auditor, with only the
# extension's queries (--disable-default-metrics --disable-settings-metrics).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
EXPORTER=${EXPORTER:-/usr/bin/prometheus-postgres-exporter}
PORT=${SCRAPE_PORT:-7399}
QUERIES=$(cd "$(dirname "$0")/.." && pwd)/contrib/prometheus-postgres-exporter/lifecycle-queries.yaml
q "DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_prometheus') THEN
	CREATE ROLE bench_prometheus LOGIN IN ROLE lifecycle_auditor; END IF; END\$\$" >/dev/null
users=$(q "SELECT count(*) FROM lifecycle.users")
log=$(mktemp)
DATA_SOURCE_NAME="host=$BENCH_SOCK port=$BENCH_PORT user=bench_prometheus dbname=$BENCH_DB sslmode=disable" \
	"$EXPORTER" --extend.query-path="$QUERIES" --web.listen-address="127.0.0.1:$PORT" \
	--disable-default-metrics --disable-settings-metrics --log.level=warn >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
all=""
for i in 1 2 3; do
	t0=$(now_s)
	body=$(curl -sf --max-time 30 "http://127.0.0.1:$PORT/metrics")
	t1=$(now_s)
	ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	samples=$(echo "$body" | grep -c '^lifecycle_' || true)
	errors=$(echo "$body" | awk '/^pg_exporter_last_scrape_error/ { print $2 }')
	dur=$(echo "$body" | awk '/^pg_exporter_last_scrape_duration_seconds/ { print $2 }')
	all="$all ${ms}"
	report "scrape $i at $users users: ${ms} ms at the client, exporter's scrape ${dur} s, $samples lifecycle samples, scrape error $errors"
done
report "scrape: client times ($all ) ms; goal < 1000 ms"
