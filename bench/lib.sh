# Shared helpers for the lifecycle benchmarks (sourced by bench/*.sh).
# One throwaway cluster, run as the postgres OS user, port 7301 in /tmp.
BENCH_PORT=${BENCH_PORT:-7301}
BENCH_DATA=${BENCH_DATA:-/tmp/lifecycle-bench-data}
BENCH_SOCK=${BENCH_SOCK:-/tmp/lifecycle-bench-sock}
BENCH_DB=bench
BENCH_OUT=${BENCH_OUT:-/tmp/lifecycle-bench-results.txt}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PATH="$PGBIN:$PATH"
export PGHOST=$BENCH_SOCK PGPORT=$BENCH_PORT PGDATABASE=$BENCH_DB

export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
qf() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }
report() { echo "$* [load $(cut -d' ' -f1 /proc/loadavg)]" | tee -a "$BENCH_OUT"; }
# Seconds since the epoch with microseconds.
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Wait until the SQL condition is true (poll every 50 ms, at most $2 s).
wait_for() {
	local cond=$1 limit=${2:-600} start
	start=$(date +%s)
	until [ "$(q "SELECT ($cond)")" = t ]; do
		if [ $(( $(date +%s) - start )) -gt "$limit" ]; then
			echo "timeout waiting for: $cond" >&2
			return 1
		fi
		sleep 0.05
	done
}

worker_pid() {
	q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'"
}
# VmRSS counts the shared buffers the worker has touched; RssAnon is its
# private memory (what would grow with a leak).  Prints "VmRSS/RssAnon".
worker_rss_kb() {
	awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } END { print r "/" a }' \
		"/proc/$(worker_pid)/status"
}
set_worker() {			# set_worker <guc> <value>: ALTER SYSTEM + reload
	q "ALTER SYSTEM SET $1 = '$2'" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
}
