#!/usr/bin/env bash
# bench/cluster.sh start|stop: the benchmarks' throwaway cluster.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case ${1:-} in
start)
	rm -rf "$BENCH_DATA" "$BENCH_SOCK"
	mkdir -p "$BENCH_SOCK"
	initdb -D "$BENCH_DATA" -A trust -N >/dev/null
	# The same settings serve the extension and every baseline: durable
	# commits (synchronous_commit on), full_page_writes on.
	cat >> "$BENCH_DATA/postgresql.conf" <<CONF
port = $BENCH_PORT
unix_socket_directories = '$BENCH_SOCK'
listen_addresses = ''
shared_buffers = '1GB'
work_mem = '64MB'
maintenance_work_mem = '512MB'
max_wal_size = '16GB'
min_wal_size = '2GB'
checkpoint_timeout = '30min'
wal_buffers = '64MB'
max_connections = 50
shared_preload_libraries = 'lifecycle, auto_explain'
lifecycle.database = '$BENCH_DB'
lifecycle.allow_time_travel = on
auto_explain.log_min_duration = -1
log_min_messages = warning
CONF
	pg_ctl -D "$BENCH_DATA" -l "$BENCH_DATA/server.log" -w start >/dev/null
	createdb "$BENCH_DB"
	q "CREATE EXTENSION lifecycle" 2>/dev/null
	wait_for "EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler')" 30
	;;
stop)
	pg_ctl -D "$BENCH_DATA" -m fast -w stop >/dev/null || true
	;;
*)
	echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
