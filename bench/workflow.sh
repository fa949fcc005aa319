#!/usr/bin/env bash
# Advance N due instances of a custom workflow (one users UPDATE + one
# history INSERT per instance) by the scheduler worker, against one
# set-based SQL statement doing the same writes on an identical copy of
# the tables in the same run (DESIGN "Version 0.3.0: scale of the views,
# and no regression": the worker at least 0.7x the statement).
#
# The workflow (defined here, bench_wf): pending --advance (1 day after
# entering)--> done --purge (30 days after that was due)--> erased; no
# message, no hook.  One instance is started through lifecycle_start(), so
# its row is exactly what the engine writes; the other N - 1 are copies of
# it (every column but the id, subject, e-mail and trace id; the times
# shifted by i milliseconds so that they fall due one after another), in
# lifecycle.users and in the copy table.  The clock then travels two days
# and the worker (woken by the travel's commit) advances them all: pending
# -> done, one history row each.  Time = from the travel until
# worker_stats.transitions_total has grown by N (polled every 50 ms).
#
# The line "workflow: ... ratio R x" is what bench/compare.sh reads.  The
# script also checks that both sides wrote the same columns (users columns
# changed, history columns set) and says so.
#
#   WORKFLOW_INSTANCES (default 1000000), WORKFLOW_BATCHES (batch_size
#   values, default 10000), WORKFLOW_ROUNDS (default 1)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${WORKFLOW_INSTANCES:-1000000}
ROUNDS=${WORKFLOW_ROUNDS:-1}

define() {			# the workflow, once per cluster
	qf <<'SQL' >/dev/null
SELECT lifecycle_define_workflow('bench_wf', '{
  "description": "bench/workflow.sh: one timer to advance, one to erase",
  "params": {"wait": "1 day", "keep": "30 days"},
  "states": {
    "pending": {"timer": {"event": "advance", "after": "wait", "from": "entered", "to": "done"}},
    "done": {"timer": {"event": "purge", "after": "keep", "from": "due", "to": "erased"}}
  },
  "events": {"begin": [{"from": ["none"], "to": "pending"}]}
}')
 WHERE NOT EXISTS (SELECT 1 FROM lifecycle.workflows WHERE name = 'bench_wf');
SQL
}

# The column list and the SELECT list that copy the template row t N - 1
# times (i = 1 .. N - 1), generated from the catalog so that every column
# the engine writes is copied whatever the schema.
copy_lists() {
	q "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) || '|' ||
		string_agg(CASE
			WHEN attname = 'subject' THEN '''wf-'' || i'
			WHEN attname = 'email' THEN '''wf-'' || i || ''@example.com'''
			WHEN atttypid = 'uuid'::regtype THEN 'pg_catalog.gen_random_uuid()'
			WHEN atttypid = 'timestamptz'::regtype
				THEN 't.' || quote_ident(attname) || ' + i * interval ''1 millisecond'''
			ELSE 't.' || quote_ident(attname) END, ', ' ORDER BY attnum)
	  FROM pg_attribute
	 WHERE attrelid = 'lifecycle.users'::regclass AND attnum > 0 AND NOT attisdropped
	   AND attname <> 'id' AND attgenerated = ''"
}

load() {			# load <table>: the template and its N - 1 copies
	qf <<SQL >/dev/null
TRUNCATE $1;
INSERT INTO $1 ($COLS) SELECT $SELS
  FROM bench_wf_template t, generate_series(0, $N - 1) i;
SQL
}

prepare() {			# fresh tables, the template, the copy for the baseline
	set_worker lifecycle.enabled off
	q "TRUNCATE lifecycle.users, lifecycle.history, lifecycle.outbox" >/dev/null
	q "SELECT lifecycle_start('bench_wf', 'wf-0', 'wfbench', email => 'wf-0@example.com',
		attrs => jsonb_build_object('plan', 'pro', 'locale', 'en-GB', 'team', 'team-0',
			'signup', 'web', 'ref', md5('0')))" >/dev/null
	qf <<'SQL' >/dev/null
DROP TABLE IF EXISTS bench_wf_template, bench_wf_users, bench_wf_history;
CREATE TABLE bench_wf_template AS SELECT * FROM lifecycle.users WHERE subject = 'wf-0';
CREATE TABLE bench_wf_users (LIKE lifecycle.users INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE bench_wf_history (LIKE lifecycle.history INCLUDING ALL);
SQL
	IFS='|' read -r COLS SELS < <(copy_lists)
	q "TRUNCATE lifecycle.history" >/dev/null
	load lifecycle.users
	load bench_wf_users
	for t in lifecycle.users lifecycle.history bench_wf_users bench_wf_history; do
		q "VACUUM ANALYZE $t" >/dev/null
	done
	q "CHECKPOINT" >/dev/null
	set_worker lifecycle.enabled on
}

baseline() {			# one statement, the same writes, at the travelled clock
	local cut t0 t1 rows
	q "CHECKPOINT" >/dev/null
	cut=$(q "SELECT lifecycle_now() + interval '2 days'")
	t0=$(now_s)
	rows=$(qf -v cut="$cut" <<'SQL' | tail -1
WITH d AS (
	SELECT id, next_at FROM bench_wf_users WHERE next_at <= :'cut' FOR UPDATE),
u AS (
	UPDATE bench_wf_users u SET state = 'done', state_since = :'cut', state_due_at = d.next_at, step = 0,
		next_at = d.next_at + interval '30 days', next_event = 'purge',
		deadline_at = d.next_at + interval '30 days', deadline_event = 'purge',
		retry_at = NULL, retries = 0, last_error = NULL
	  FROM d WHERE u.id = d.id
	RETURNING u.id, d.next_at AS due_at)
INSERT INTO bench_wf_history (user_id, at, due_at, from_state, to_state, event, actor)
SELECT id, :'cut', due_at, 'pending', 'done', 'advance', 'lifecycle worker' FROM u;
SQL
)
	t1=$(now_s)
	BASE_S=$(elapsed "$t0" "$t1")
	BASE_RATE=$(awk -v n="$N" -v s="$BASE_S" 'BEGIN { printf "%.0f", n / s }')
	BASE_ROWS=$rows
}

worker_run() {			# worker_run <batch_size>
	local bs=$1 before t0 t1 s rate due hist same
	set_worker lifecycle.batch_size "$bs"
	q "CHECKPOINT" >/dev/null
	before=$(q "SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'")
	t0=$(now_s)
	q "SELECT lifecycle_travel('2 days')" >/dev/null
	wait_for "(SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler') >= $before + $N" 3600
	t1=$(now_s)
	s=$(elapsed "$t0" "$t1")
	rate=$(awk -v n="$N" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
	due=$(q "SELECT count(*) FROM lifecycle.users WHERE next_at <= lifecycle_now()")
	hist=$(q "SELECT count(*) || ' history rows, ' || count(DISTINCT user_id) || ' instances'
		FROM lifecycle.history WHERE event = 'advance'")
	same=$(same_writes)
	report "workflow: advance $N due instances of a custom workflow (users UPDATE + history INSERT each): worker batch_size=$bs ${s}s, $rate rows/s ($hist, $due left due); one set-based statement ($BASE_ROWS) ${BASE_S}s, $BASE_RATE rows/s; $same; ratio $(ratio "$rate" "$BASE_RATE") x (goal >= 0.7)"
}

# Both sides changed the same users columns of the template's first copy
# and set the same history columns.
same_writes() {
	q "WITH pre AS (SELECT to_jsonb(t) - 'id' - 'subject' - 'email' - 'trace_id' AS j
				FROM bench_wf_template t),
		w AS (SELECT to_jsonb(u) AS j FROM lifecycle.users u WHERE subject = 'wf-0'),
		b AS (SELECT to_jsonb(u) AS j FROM bench_wf_users u WHERE subject = 'wf-0'),
		cw AS (SELECT array_agg(k ORDER BY k) AS c FROM pre, w, jsonb_object_keys(pre.j) k
				WHERE pre.j -> k IS DISTINCT FROM w.j -> k),
		cb AS (SELECT array_agg(k ORDER BY k) AS c FROM pre, b, jsonb_object_keys(pre.j) k
				WHERE pre.j -> k IS DISTINCT FROM b.j -> k),
		hw AS (SELECT array_agg(k ORDER BY k) AS c FROM (SELECT jsonb_strip_nulls(to_jsonb(h)) AS j
				FROM lifecycle.history h WHERE event = 'advance' LIMIT 1) x, jsonb_object_keys(x.j) k),
		hb AS (SELECT array_agg(k ORDER BY k) AS c FROM (SELECT jsonb_strip_nulls(to_jsonb(h)) AS j
				FROM bench_wf_history h LIMIT 1) x, jsonb_object_keys(x.j) k)
	SELECT CASE WHEN cw.c = cb.c AND hw.c = hb.c
				THEN 'same writes (users ' || array_to_string(cw.c, ',') || '; history '
					 || array_to_string(hw.c, ',') || ')'
				ELSE 'WRITES DIFFER: users worker ' || array_to_string(cw.c, ',') || ' / statement '
					 || array_to_string(cb.c, ',') || '; history worker ' || array_to_string(hw.c, ',')
					 || ' / statement ' || array_to_string(hb.c, ',') END
	  FROM cw, cb, hw, hb"
}

report "== workflow: advance $N due instances of a custom workflow ($(date -u +%FT%TZ))"
define
for r in $(seq "$ROUNDS"); do
	for bs in ${WORKFLOW_BATCHES:-10000}; do
		prepare
		baseline
		worker_run "$bs"
	done
done
