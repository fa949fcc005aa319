#!/usr/bin/env bash
# The cost of OpenTelemetry export (issue 19): advance N (1,000,000) due
# users by the scheduler worker with lifecycle.otel_endpoint empty (off)
# and set to a loopback OTLP/HTTP receiver (test/sinks/otlp_sink.py
# --quiet: answers 200 at once, counts spans), alternating, ROUNDS (2)
# times each; time = from the travel until worker_stats.transitions_total
# has grown by N, as in advance.sh.  Also: spans exported and dropped by
# the exporter during each "on" run (it falls behind at this rate and
# keeps a bounded backlog: the rest is dropped and counted).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${OTEL_USERS:-1000000}
ROUNDS=${OTEL_ROUNDS:-2}
SINK_PORT=${OTEL_SINK_PORT:-7350}

python3 "$(dirname "$0")/../test/sinks/otlp_sink.py" --quiet --log /dev/null \
	--port "$SINK_PORT" > /dev/null 2>&1 &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null || true' EXIT
sleep 1

prepare() {
	set_worker lifecycle.enabled off
	q "TRUNCATE lifecycle.history, lifecycle.outbox" >/dev/null
	q "DELETE FROM lifecycle.otel_cursor" >/dev/null
	qf <<SQL >/dev/null
TRUNCATE lifecycle.users;
INSERT INTO lifecycle.users (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, next_at, next_event, created_at)
SELECT 'adv', 'user-' || i, 'user-' || i || '@example.com',
	jsonb_build_object('plan', 'pro', 'locale', 'en-GB', 'team', 'team-' || (i % 1000),
		'signup', 'web', 'ref', md5(i::text)),
	'eu', 'default', 1, 'active', n - interval '89 days', n - interval '89 days', 0,
	n + interval '1 day' + i * interval '1 millisecond', 'dormant', n - interval '100 days'
  FROM generate_series(1, $N) i, lifecycle_now() n;
SQL
	q "VACUUM ANALYZE lifecycle.users" >/dev/null
	q "VACUUM ANALYZE lifecycle.history" >/dev/null
	q "CHECKPOINT" >/dev/null
}

run() {				# run off|on
	local mode=$1 before e0 d0 e1 d1 t0 t1 s rate
	prepare
	if [ "$mode" = on ]; then
		set_worker lifecycle.allow_private_targets on
		set_worker lifecycle.otel_endpoint "http://127.0.0.1:$SINK_PORT"
	else
		set_worker lifecycle.otel_endpoint ''
	fi
	set_worker lifecycle.enabled on
	sleep 2				# the exporter reads its cursor (the end of history)
	before=$(q "SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'")
	e0=$(q "SELECT spans_exported_total FROM lifecycle.worker_stats WHERE worker = 'exporter'")
	d0=$(q "SELECT spans_dropped_total FROM lifecycle.worker_stats WHERE worker = 'exporter'")
	t0=$(now_s)
	q "SELECT lifecycle_travel('2 days')" >/dev/null
	wait_for "(SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler') >= $before + $N" 1800
	t1=$(now_s)
	s=$(elapsed "$t0" "$t1")
	rate=$(awk -v n="$N" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
	sleep 5				# the exporter catches up or drops
	e1=$(q "SELECT spans_exported_total FROM lifecycle.worker_stats WHERE worker = 'exporter'")
	d1=$(q "SELECT spans_dropped_total FROM lifecycle.worker_stats WHERE worker = 'exporter'")
	if [ "$mode" = off ]; then
		OFF_RATE=$rate
		report "otel off: advance $N: ${s}s, $rate rows/s"
	else
		report "otel on:  advance $N: ${s}s, $rate rows/s, ratio $(ratio "$rate" "$OFF_RATE") x off (just before); spans exported $((e1 - e0)), dropped $((d1 - d0)) within 5 s after"
	fi
}

report "== otel export cost, $N due users ($(date -u +%FT%TZ))"
for r in $(seq 1 "$ROUNDS"); do
	run off
	run on
done
set_worker lifecycle.otel_endpoint ''
