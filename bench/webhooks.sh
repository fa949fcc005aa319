#!/usr/bin/env bash
# Deliver 20,000 webhooks to a local receiver with the sender worker, once
# with lifecycle.max_concurrent_requests = 1 (a one-request-at-a-time
# sender: the baseline) and once with 64 (the libcurl multi interface), in
# the same run, on the same cluster, against the same receiver.
#
# The receiver is bench/webhooks_sink.py (asyncio, keep-alive; it checks
# every signature and counts distinct webhook-ids).  It answers after
# WEBHOOK_DELAY_MS (default 2: a receiver on the same LAN) and, for
# comparison, at once (0 ms).  Messages: 20,000 invitations written in one
# transaction while the sender is off; then the sender is turned on (time
# starts) and the run ends when the last message is recorded as sent
# (max(sent_at)).  Between runs every message is reset to pending.
#
#   bash bench/webhooks.sh              # as root: builds, installs, runs as postgres
#   WEBHOOKS=5000 WEBHOOK_DELAYS="2" bash bench/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
	bash scripts/deps.sh
	work=$(mktemp -d /tmp/lifecycle-webhooks.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
		--exclude 'tmp_check*' --exclude results ./ "$work/"
	make -C "$work" -s >/dev/null
	make -C "$work" -s install >/dev/null
	chown -R postgres: "$work"
	runuser -u postgres -- env WEBHOOKS="${WEBHOOKS:-}" \
		WEBHOOK_DELAYS="${WEBHOOK_DELAYS:-}" WEBHOOK_CONCURRENCY="${WEBHOOK_CONCURRENCY:-}" \
		bash "$work/bench/webhooks.sh"
	cp /tmp/lifecycle-webhooks-results.txt bench/webhooks-latest.txt
	exit 0
fi

N=${WEBHOOKS:-20000}
DELAYS=${WEBHOOK_DELAYS:-"2 0"}
CONCURRENCY=${WEBHOOK_CONCURRENCY:-"1 64"}
PORT=7110
DATA=/tmp/lifecycle-webhooks-data
SOCK=/tmp/lifecycle-webhooks-sock
OUT=/tmp/lifecycle-webhooks-results.txt
export PATH="/usr/lib/postgresql/15/bin:$PATH"
export PGHOST=$SOCK PGPORT=$PORT PGDATABASE=postgres
export PGOPTIONS="-c client_min_messages=warning"
SECRET="whsec_$(head -c 32 /dev/urandom | base64)"

q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
report() { echo "$*" | tee -a "$OUT"; }
set_guc() { q "ALTER SYSTEM SET $1 = '$2'" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null; }
wait_for() {			# wait_for <sql condition> [seconds]
	local start=$SECONDS
	until [ "$(q "SELECT ($1)")" = t ]; do
		if [ $((SECONDS - start)) -gt "${2:-600}" ]; then
			echo "timeout waiting for: $1" >&2
			return 1
		fi
		sleep 0.05
	done
}

sink_pid=
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
	pg_ctl -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$DATA" "$SOCK"
mkdir -p "$SOCK"
initdb -D "$DATA" -A trust -N >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$SOCK'
listen_addresses = ''
shared_buffers = '512MB'
max_wal_size = '8GB'
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_private_targets = on
lifecycle.enabled = off
log_min_messages = warning
CONF
pg_ctl -D "$DATA" -l "$DATA/server.log" -w start >/dev/null
q "CREATE EXTENSION lifecycle" >/dev/null

: > "$OUT"
report "lifecycle webhooks benchmark, $(date -u +%FT%TZ), $(nproc) cores, $(postgres --version)"
report "$N webhooks per run; sender batches of max(256, 8 x concurrency) messages"

start_sink() {			# start_sink <delay ms>
	rm -f "$SOCK/sink.port"
	/usr/bin/python3 "$(dirname "$0")/webhooks_sink.py" --secret "$SECRET" \
		--delay-ms "$1" --port-file "$SOCK/sink.port" &
	sink_pid=$!
	for _ in $(seq 100); do [ -s "$SOCK/sink.port" ] && break; sleep 0.05; done
	SINK_PORT=$(cat "$SOCK/sink.port")
}
stop_sink() { kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=; }
sink_stats() { curl -s "http://127.0.0.1:$SINK_PORT/stats"; }

first=1
for delay in $DELAYS; do
	start_sink "$delay"
	q "SELECT lifecycle_add_channel('bench', 'webhook', 'http://127.0.0.1:$SINK_PORT/hook', '$SECRET')" >/dev/null
	if [ $first = 1 ]; then
		q "SELECT lifecycle_define_policy('bench', '{\"channel\": \"bench\"}')" >/dev/null
		q "SELECT count(lifecycle_invite('w' || i, 'w' || i || '@example.com', 'bench', 'bench',
			attrs => '{\"name\": \"Webhook Receiver\", \"plan\": \"pro\"}'))
			FROM generate_series(1, $N) i" >/dev/null
		first=0
	fi
	declare -A rate=()
	for c in $CONCURRENCY; do
		set_guc lifecycle.enabled off
		q "UPDATE lifecycle.outbox SET status = 'pending', attempts = 0, sent_at = NULL,
			last_error = NULL, claimed_at = NULL, last_attempt_at = NULL,
			next_attempt_at = lifecycle_now() - interval '1 second'" >/dev/null
		q "VACUUM ANALYZE lifecycle.outbox" >/dev/null
		q "CHECKPOINT" >/dev/null
		curl -s -XPOST "http://127.0.0.1:$SINK_PORT/reset" >/dev/null
		set_guc lifecycle.max_concurrent_requests "$c"
		t0=$(q "SELECT extract(epoch FROM clock_timestamp())")
		set_guc lifecycle.enabled on
		wait_for "(SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent') = $N" 900
		t1=$(q "SELECT extract(epoch FROM max(sent_at)) FROM lifecycle.outbox")
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		rate[$c]=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
		stats=$(sink_stats)
		report "receiver latency ${delay} ms, max_concurrent_requests $c: $N delivered in $secs s = ${rate[$c]}/s; receiver: $stats"
		failed=$(q "SELECT count(*) FROM lifecycle.outbox WHERE attempts <> 1")
		[ "$failed" = 0 ] || report "  ($failed messages needed more than one attempt)"
	done
	set -- $CONCURRENCY
	base=$1
	for c in $CONCURRENCY; do
		[ "$c" = "$base" ] && continue
		report "receiver latency ${delay} ms: concurrency $c vs $base: $(awk -v a="${rate[$c]}" -v b="${rate[$base]}" 'BEGIN { printf "%.1f", a / b }')x"
	done
	stop_sink
done
