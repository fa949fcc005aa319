#!/usr/bin/env bash
# Advance 1,000,000 due users (users UPDATE + history INSERT + outbox INSERT
# per user) by the scheduler worker, against one hand-written SQL statement
# doing the same writes on an identical copy of the tables.  Also: worker
# RSS before and after, and lifecycle.batch_size 1k / 10k / 50k.
#
# The users are loaded straight into lifecycle.users (active, dormancy
# timer due in one day, default policy), 1M rows with a 100-byte attrs
# document; the clock then travels two days and the worker (woken by the
# travel's commit) advances them all: active -> dormant, one history row and
# one archive_notice message each.  Time = from the travel until
# worker_stats.transitions_total has grown by 1M (polled every 50 ms).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${ADVANCE_USERS:-1000000}

load_users() {			# load_users <table>: N users due in one day
	qf <<SQL >/dev/null
TRUNCATE $1;
INSERT INTO $1 (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, next_at, next_event, created_at)
SELECT 'adv', 'user-' || i, 'user-' || i || '@example.com',
	jsonb_build_object('plan', 'pro', 'locale', 'en-GB', 'team', 'team-' || (i % 1000),
		'signup', 'web', 'ref', md5(i::text)),
	'eu', 'default', 1, 'active', n - interval '89 days', n - interval '89 days', 0,
	n + interval '1 day' + i * interval '1 millisecond', 'dormant', n - interval '100 days'
  FROM generate_series(1, $N) i, lifecycle_now() n;
SQL
}

prepare() {			# fresh extension tables and a copy for the baseline
	set_worker lifecycle.enabled off
	q "TRUNCATE lifecycle.history, lifecycle.outbox" >/dev/null
	load_users lifecycle.users
	qf <<SQL >/dev/null
DROP TABLE IF EXISTS bench_users, bench_history, bench_outbox;
CREATE TABLE bench_users (LIKE lifecycle.users INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE bench_history (LIKE lifecycle.history INCLUDING ALL);
CREATE TABLE bench_outbox (LIKE lifecycle.outbox INCLUDING ALL);
SQL
	load_users bench_users
	q "VACUUM ANALYZE lifecycle.users" >/dev/null
	q "VACUUM ANALYZE lifecycle.history" >/dev/null
	q "VACUUM ANALYZE lifecycle.outbox" >/dev/null
	q "VACUUM ANALYZE bench_users" >/dev/null
	q "CHECKPOINT" >/dev/null
	set_worker lifecycle.enabled on
}

baseline() {			# one statement, same writes, same travelled clock
	local cut t0 t1 rows
	q "CHECKPOINT" >/dev/null
	cut=$(q "SELECT lifecycle_now() + interval '2 days'")
	t0=$(now_s)
	rows=$(qf -v cut="$cut" <<'SQL' | tail -1
WITH d AS (
	SELECT id, next_at FROM bench_users WHERE next_at <= :'cut' FOR UPDATE),
u AS (
	UPDATE bench_users u SET state = 'dormant', state_since = :'cut', step = 0,
		next_at = :'cut'::timestamptz + interval '23 days', next_event = 'archive_reminder',
		retry_at = NULL, retries = 0, last_error = NULL
	  FROM d WHERE u.id = d.id
	RETURNING u.id, u.tenant, u.subject, u.email, u.region, u.policy, u.attrs,
		d.next_at AS due_at),
h AS (
	INSERT INTO bench_history (user_id, at, due_at, from_state, to_state, event, actor)
	SELECT id, :'cut', due_at, 'active', 'dormant', 'dormant', 'lifecycle worker' FROM u)
INSERT INTO bench_outbox (user_id, channel, message, payload, status,
	next_attempt_at, created_at)
SELECT id, NULL, 'archive_notice',
	jsonb_build_object('subject', subject, 'tenant', tenant, 'email', email,
		'region', region, 'policy', policy, 'attrs', attrs, 'state', 'dormant',
		'archive_at', :'cut'::timestamptz + interval '30 days'),
	'unrouted', NULL, :'cut' FROM u;
SQL
)
	t1=$(now_s)
	BASE_S=$(elapsed "$t0" "$t1")
	BASE_RATE=$(awk -v n="$N" -v s="$BASE_S" 'BEGIN { printf "%.0f", n / s }')
	report "advance baseline (one CTE statement, $rows): ${BASE_S}s, $BASE_RATE rows/s"
}

worker_run() {			# worker_run <batch_size>
	local bs=$1 before t0 t1 s rate rss0 rss1 due hist
	set_worker lifecycle.batch_size "$bs"
	q "CHECKPOINT" >/dev/null
	before=$(q "SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'")
	rss0=$(worker_rss_kb)
	t0=$(now_s)
	q "SELECT lifecycle_travel('2 days')" >/dev/null
	wait_for "(SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler') >= $before + $N" 1800
	t1=$(now_s)
	rss1=$(worker_rss_kb)
	s=$(elapsed "$t0" "$t1")
	rate=$(awk -v n="$N" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
	due=$(q "SELECT count(*) FROM lifecycle.users WHERE next_at <= lifecycle_now()")
	hist=$(q "SELECT count(*) || ' history, ' || count(DISTINCT user_id) || ' users' FROM lifecycle.history WHERE event = 'dormant'")
	report "advance worker batch_size=$bs: ${s}s, $rate rows/s, ratio $(ratio "$rate" "$BASE_RATE") x baseline; $hist, $due left due; worker VmRSS/RssAnon ${rss0} kB -> ${rss1} kB"
	# The clock moved 2 days: move the baseline's copy along for the next run.
}

report "== advance $N due users ($(date -u +%FT%TZ))"
RSS_START=$(worker_rss_kb)
for bs in ${ADVANCE_BATCHES:-10000 1000 50000}; do
	prepare
	baseline
	worker_run "$bs"
done
RSS_END=$(worker_rss_kb)
report "worker VmRSS/RssAnon: ${RSS_START} kB at start, ${RSS_END} kB after all runs ($(q "SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'") transitions)"

# Where the time goes: EXPLAIN ANALYZE of the worker's batch statements
# (auto_explain, nested statements) for one 10k batch of 100k users.
if [ "${ADVANCE_EXPLAIN:-1}" = 1 ]; then
	N=100000
	prepare
	set_worker lifecycle.enabled off
	set_worker lifecycle.batch_size 10000
	q "ALTER SYSTEM SET auto_explain.log_analyze = on" >/dev/null
	q "ALTER SYSTEM SET auto_explain.log_buffers = on" >/dev/null
	q "ALTER SYSTEM SET auto_explain.log_nested_statements = on" >/dev/null
	q "ALTER SYSTEM SET auto_explain.log_min_duration = 0" >/dev/null
	q "ALTER SYSTEM SET log_min_messages = log" >/dev/null
	set_worker lifecycle.enabled on
	: > "$BENCH_DATA/explain.log.start"
	mark=$(wc -c < "$BENCH_DATA/server.log")
	q "SELECT lifecycle_travel('2 days')" >/dev/null
	wait_for "NOT EXISTS (SELECT 1 FROM lifecycle.users WHERE next_at <= lifecycle_now())" 600
	for g in auto_explain.log_analyze auto_explain.log_buffers auto_explain.log_nested_statements \
		auto_explain.log_min_duration log_min_messages; do
		q "ALTER SYSTEM RESET $g" >/dev/null
	done
	q "SELECT pg_reload_conf()" >/dev/null
	tail -c +"$mark" "$BENCH_DATA/server.log" > "${BENCH_EXPLAIN:-/tmp/lifecycle-bench-explain.log}"
	report "auto_explain output of the worker's statements: ${BENCH_EXPLAIN:-/tmp/lifecycle-bench-explain.log}"
fi
