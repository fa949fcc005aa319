#!/usr/bin/env bash
# The DBA views at DBA_USERS users (default 1,000,000; the figure in
# bench/RESULTS.md is at 10,000,000): lifecycle.violations,
# lifecycle.retention_report, lifecycle.metrics, lifecycle.overdue and
# lifecycle_status() of one user, each timed (median of 3 runs after one
# warm-up) and explained (EXPLAIN (ANALYZE, BUFFERS) into
# /tmp/lifecycle-bench-dba-explain.txt), in a new session and as the
# second run in a session; DBA_NOLOAD=1 measures the users already loaded.
#
# DBA_TRAVEL='1 day': before measuring, move the lifecycle clock that far
# with the worker off (a worker that was down that long: every timer that
# fell due meanwhile is overdue, and those with a deadline are violations;
# bench/RESULTS.md section 13 says why a day is the late set we measure);
# the worker stays off afterwards (while the clock is travelled), so later
# DBA_NOLOAD=1 runs (without DBA_TRAVEL) see the same set.
#
# Users are loaded straight into lifecycle.users in a realistic mix (70 %
# active, 10 % dormant, 1 % completed, 12 % archived, 1 % invited, 1 %
# expired, 5 % erased; 0.5 % on hold; 0.1 % overdue, of them a third past
# their retention deadline), 4 tenants, with two history rows and one
# message per user, then VACUUM ANALYZE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${DBA_USERS:-1000000}
OUT=${DBA_EXPLAIN:-/tmp/lifecycle-bench-dba-explain.txt}
: > "$OUT"

set_worker lifecycle.enabled off
report "== DBA views at $N users ($(date -u +%FT%TZ))"
t0=$(now_s)
# DBA_NOLOAD=1: measure the users already loaded (a second pass).
if [ -z "${DBA_NOLOAD:-}" ]; then
qf -v n="$N" <<'SQL' >/dev/null
TRUNCATE lifecycle.users, lifecycle.history, lifecycle.outbox, lifecycle.erasures;
ALTER TABLE lifecycle.users SET (autovacuum_enabled = off);
ALTER TABLE lifecycle.history SET (autovacuum_enabled = off);
ALTER TABLE lifecycle.outbox SET (autovacuum_enabled = off);
INSERT INTO lifecycle.users (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, held, hold_reason, next_at, next_event, created_at,
	deadline_at, deadline_event)
SELECT tenant, subject, email, attrs, region, policy, policy_version, state, state_since,
	last_seen, step, held, hold_reason, next_at, next_event, created_at,
	CASE WHEN state = 'erased' THEN NULL WHEN held THEN t - interval '1 day' ELSE next_at END,
	CASE state WHEN 'active' THEN 'dormant' WHEN 'dormant' THEN 'archive'
		WHEN 'completed' THEN 'archive' WHEN 'archived' THEN 'erase'
		WHEN 'invited' THEN 'expire' WHEN 'expired' THEN 'erase' END
  FROM (
SELECT 'tenant-' || (i % 4) AS tenant,
	CASE WHEN st = 'erased' THEN NULL ELSE 'user-' || i END AS subject,
	CASE WHEN st = 'erased' THEN NULL ELSE 'user-' || i || '@example.com' END AS email,
	CASE WHEN st = 'erased' THEN '{}' ELSE jsonb_build_object('plan', 'pro', 'team', 'team-' || (i % 1000)) END AS attrs,
	'eu' AS region, 'default' AS policy, 1 AS policy_version, st::lifecycle.state AS state,
	t - (i % 300) * interval '1 day' AS state_since,
	t - (i % 80) * interval '1 day' AS last_seen, 0 AS step, i % 200 = 3 AS held,
	CASE WHEN i % 200 = 3 THEN 'litigation' END AS hold_reason,
	CASE WHEN st = 'erased' OR i % 200 = 3 THEN NULL
		 WHEN i % 1000 = 1 THEN t - interval '2 hours'          -- overdue, a violation
		 WHEN i % 1000 = 2 THEN t - interval '30 seconds'       -- overdue, within the minute
		 ELSE t + (i % 90000) * interval '1 minute' END AS next_at,
	CASE st WHEN 'active' THEN 'dormant' WHEN 'dormant' THEN 'archive_due'
		WHEN 'completed' THEN 'archive_due' WHEN 'archived' THEN 'erase_due'
		WHEN 'invited' THEN 'expire' WHEN 'expired' THEN 'erase_due' END AS next_event,
	t - interval '400 days' AS created_at, t
  FROM (SELECT i, CASE WHEN i % 100 < 70 THEN 'active' WHEN i % 100 < 80 THEN 'dormant'
			WHEN i % 100 < 81 THEN 'completed' WHEN i % 100 < 93 THEN 'archived'
			WHEN i % 100 < 94 THEN 'invited' WHEN i % 100 < 95 THEN 'expired'
			ELSE 'erased' END AS st
	  FROM generate_series(1, :n) i) s, lifecycle_now() t) l;
INSERT INTO lifecycle.history (user_id, at, due_at, from_state, to_state, event, actor)
SELECT id, created_at, NULL::timestamptz, NULL::lifecycle.state, 'invited'::lifecycle.state, 'invite', 'app' FROM lifecycle.users
UNION ALL
SELECT id, created_at + interval '1 day', NULL::timestamptz, 'invited'::lifecycle.state, 'active'::lifecycle.state, 'register', 'app' FROM lifecycle.users;
INSERT INTO lifecycle.outbox (user_id, channel, message, payload, status, attempts, created_at, sent_at)
SELECT id, NULL, 'invite', '{}', 'sent', 1, created_at, created_at FROM lifecycle.users;
SQL
for t in users history outbox; do q "VACUUM ANALYZE lifecycle.$t" >/dev/null; done
q "CHECKPOINT" >/dev/null
fi
if [ -n "${DBA_TRAVEL:-}" ]; then
	q "SELECT lifecycle_travel('$DBA_TRAVEL')" >/dev/null
	report "dba: clock moved $DBA_TRAVEL with the worker off: $(q "SELECT count(*) FROM lifecycle.overdue") overdue, $(q "SELECT count(*) FROM lifecycle.violations") violations"
fi
report "dba: loaded $N users, $(q "SELECT count(*) FROM lifecycle.history") history rows, $(q "SELECT count(*) FROM lifecycle.outbox") messages in $(elapsed "$t0" "$(now_s)")s; users $(q "SELECT pg_size_pretty(pg_total_relation_size('lifecycle.users'))"), history $(q "SELECT pg_size_pretty(pg_total_relation_size('lifecycle.history'))")"

view() {			# view <name> <sql>
	local t0 t1 ms all=""
	q "$2" >/dev/null		# warm-up
	for _ in 1 2 3; do
		t0=$(now_s); rows=$(q "SELECT count(*) FROM ($2) s"); t1=$(now_s)
		all="$all $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
	done
	ms=$(echo $all | tr ' ' '\n' | sort -n | sed -n 2p)
	plan=$(q "EXPLAIN (ANALYZE, BUFFERS) $2")
	{ echo "==== $1: $2"; echo "$plan"; } >> "$OUT"
	# The same in a session that has run it once (the exporter's and a
	# pooled application's connection): a new session first loads its
	# catalog caches, the clock and the tenant grants.
	warm=$(qf -c "SELECT count(*) FROM ($2) s" -c "EXPLAIN (ANALYZE, BUFFERS) $2" | sed 1d)
	{ echo "==== $1 (second run in the session): $2"; echo "$warm"; } >> "$OUT"
	# On a loaded machine one run says little: the best of five more
	# EXPLAIN ANALYZE in the same session (what the view costs when it gets
	# the CPU), with every run's execution time.
	best=$(qf -c "EXPLAIN (ANALYZE) $2" -c "EXPLAIN (ANALYZE) $2" -c "EXPLAIN (ANALYZE) $2" \
		-c "EXPLAIN (ANALYZE) $2" -c "EXPLAIN (ANALYZE) $2" |
		awk '/^Execution Time/ { a = a " " $3; if (m == "" || $3 + 0 < m + 0) m = $3 } /^JIT:/ { j++ }
			END { printf "best %s ms of (%s ) ms, %d of 5 with JIT", m, a, j }')
	report "dba $1: $rows rows; server $(echo "$plan" | awk '/^Planning Time/ { p = $3 } /^Execution Time/ { e = $3 } END { printf "%s ms planning + %s ms execution", p, e }') (EXPLAIN ANALYZE, new session), $(echo "$warm" | awk '/^Planning Time/ { p = $3 } /^Execution Time/ { e = $3 } END { printf "%s ms planning + %s ms execution", p, e }') (second run in the session), execution $best; client median ${ms} ms of ($all ) ms incl. psql start-up"
}
base() {			# the cost of starting psql and a trivial query
	local t0 all=""
	for _ in 1 2 3; do t0=$(now_s); q "SELECT 1" >/dev/null; all="$all $(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"; done
	report "dba baseline SELECT 1: ($all ) ms (psql start-up included in every figure)"
}
base
view violations "SELECT * FROM lifecycle.violations"
view retention_report "SELECT * FROM lifecycle.retention_report"
view metrics "SELECT * FROM lifecycle.metrics"
view metrics_timers "SELECT * FROM lifecycle.metrics WHERE name = 'lifecycle_timers_violations'"
view overdue "SELECT * FROM lifecycle.overdue"
view status "SELECT * FROM lifecycle_status('user-$(( N / 2 + 7 ))', 'tenant-$(( (N / 2 + 7) % 4 ))')"
report "dba: EXPLAIN (ANALYZE, BUFFERS) of each: $OUT"
for t in users history outbox; do q "ALTER TABLE lifecycle.$t RESET (autovacuum_enabled)" >/dev/null; done
# A travelled clock (DBA_TRAVEL, now or in an earlier run) keeps the
# worker off: it would advance the late set.
[ "$(q "SELECT count(*) FROM lifecycle.clock WHERE offset_by <> interval '0'")" != 0 ] ||
	set_worker lifecycle.enabled on
