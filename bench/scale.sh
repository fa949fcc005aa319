#!/usr/bin/env bash
# make bench-scale: the whole product at N users over two simulated years.
#
# The real scheduler and sender run; the sender delivers every message to
# bench/webhooks_sink.py on loopback (it checks every signature).  The
# clock moves in STEPS steps of STEP_DAYS days (lifecycle_travel).  Each
# step has two phases, timed apart:
#   worker phase  travel, then wait until no timer is overdue (the worker
#                 has fired everything that fell due: dormancy, notices,
#                 archiving, expiry, erasure, hold lapses)
#   app phase     what an application and its DBA do that step, through
#                 the SQL API: touches (1 % of users every step, 5 % every
#                 sixth step), new invitations (N/2 spread over the first
#                 quarter of the steps, then 0.3 % of N a step),
#                 registrations (6 of 7 invitees), completions, erasure
#                 requests, restores of archived users, legal holds (placed
#                 at 20/104 of the run, released at 60/104; holds with an
#                 end date 20 weeks ahead at 30/104), and a policy
#                 migration in the middle (lifecycle_migrate when it
#                 exists, else a new policy version for new users)
# The first half of the users is adopted (lifecycle_adopt, when it exists)
# or invited and registered in bulk at the start.
#
# At the end: total time, counts by event, calls per second per API call,
# the worker's rate against the same writes done as one set-based SQL
# statement in the same run, WAL per transition, violations (checked after
# every worker phase), message delivery, table and index sizes after
# VACUUM against a fresh load of the same final rows (bloat).
#
#   N=100000 make bench-scale        # (as root) default N = 100000
#   N=1000000 STEPS=104 make bench-scale
#   VACUUM_EVERY=4 ...               # also VACUUM every 4 steps (bloat)
#   AV_EMULATE=1 ...                 # autovacuum's default thresholds after
#                                    # every step (see below)
#   STEADY=1 ...                     # after the growth quarter, invite as
#                                    # many users a step as were erased in the
#                                    # step before (a population that keeps
#                                    # its size, instead of the 0.3 % of N)
#
# Why AV_EMULATE: autovacuum looks at each table once a naptime (1 min) and
# vacuums it when its dead rows pass 50 + 20 % of its rows (or its inserts
# 1000 + 20 %, or analyzes at 50 + 10 % changed).  Two real years give it
# about a million looks; a run that compresses them into minutes gives it
# a handful, so dead index pages wait far longer to be recycled than they
# ever would.  AV_EMULATE=1 applies the same default thresholds once after
# every step (7 simulated days, thousands of real naptimes) with a plain
# VACUUM or ANALYZE, as autovacuum would have: the settings stay default,
# only the clock is compressed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-100000}
STEPS=${STEPS:-104}
STEP_DAYS=${STEP_DAYS:-7}
VACUUM_EVERY=${VACUUM_EVERY:-0}
AV_EMULATE=${AV_EMULATE:-0}
STEADY=${STEADY:-0}
GROW_STEPS=$(( STEPS * 25 / 104 > 0 ? STEPS * 25 / 104 : 1 ))
SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
dir=$(mktemp -d)
sink_pid=
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

declare -A calls=() secs=()
timed() {			# timed <name> <sql>: run, count the calls it returns
	local t0 t1 n
	t0=$(now_s)
	n=$(q "$2")
	t1=$(now_s)
	calls[$1]=$(( ${calls[$1]:-0} + ${n:-0} ))
	secs[$1]=$(awk -v a="${secs[$1]:-0}" -v b="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.3f", a + b }')
}
lsn() { q "SELECT pg_current_wal_lsn()"; }
walbytes() { q "SELECT pg_wal_lsn_diff('$2', '$1')::bigint"; }
stat() { q "SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'"; }
has_fn() { q "SELECT count(*) > 0 FROM pg_proc WHERE proname = '$1'"; }

# The sink, the channel and the policy.
/usr/bin/python3 "$(dirname "$0")/webhooks_sink.py" --secret "$SECRET" --delay-ms 0 \
	--port-file "$dir/sink.port" &
sink_pid=$!
for _ in $(seq 100); do [ -s "$dir/sink.port" ] && break; sleep 0.05; done
SINK="http://127.0.0.1:$(cat "$dir/sink.port")"
set_worker lifecycle.allow_private_targets on
set_worker lifecycle.enabled on
qf <<SQL >/dev/null
SET client_min_messages = warning;
SELECT lifecycle_add_channel('sink', 'webhook', '$SINK/hook', '$SECRET');
SELECT lifecycle_define_policy('scale', '{"channel": "sink"}');
CREATE TABLE IF NOT EXISTS bench_accounts (subject text, email text, last_seen timestamptz,
	region text, attrs jsonb, registered boolean);
SQL

report "== scale: N=$N users, $STEPS steps of $STEP_DAYS days ($(date -u +%FT%TZ))"
T_START=$(now_s)
L_START=$(lsn)
INITIAL=$(( N / 2 ))

# Step 0: the existing user base.
t0=$(now_s)
if [ "$(has_fn lifecycle_adopt)" = t ]; then
	q "TRUNCATE bench_accounts; INSERT INTO bench_accounts
	   SELECT 'u' || i, 'u' || i || '@example.com', lifecycle_now() - (i % 80) * interval '1 day',
		'eu', jsonb_build_object('plan', 'pro', 'team', 'team-' || (i % 1000)), i % 20 <> 0
	  FROM generate_series(1, $INITIAL) i" >/dev/null
	q "SELECT * FROM lifecycle_adopt('bench_accounts', 'scale', 'scale', interval '7 days')" >/dev/null
	how=adopted
else
	for lo in $(seq 1 50000 "$INITIAL"); do
		hi=$(( lo + 49999 < INITIAL ? lo + 49999 : INITIAL ))
		timed invite "SELECT count(lifecycle_invite('u' || i, 'u' || i || '@example.com', 'scale', 'scale',
			'eu', jsonb_build_object('plan', 'pro', 'team', 'team-' || (i % 1000)))) FROM generate_series($lo, $hi) i"
		timed register "SELECT count(lifecycle_register('u' || i, 'scale')) FROM generate_series($lo, $hi) i WHERE i % 20 <> 0"
	done
	how="invited (lifecycle_adopt is not installed) and registered"
fi
report "scale: $INITIAL users $how in $(elapsed "$t0" "$(now_s)")s"
q "VACUUM ANALYZE lifecycle.users" >/dev/null

next=$(( INITIAL + 1 ))
W_SECS=0; W_TRANS=0; W_WAL=0; MAXVIOL=0; MIGRATED=none; V_SECS=0
for step in $(seq 1 "$STEPS"); do
	# Worker phase.
	s0=$(stat); l0=$(lsn); t0=$(now_s)
	q "SELECT lifecycle_travel('$STEP_DAYS days')" >/dev/null
	wait_for "NOT EXISTS (SELECT 1 FROM lifecycle.overdue)" 3600
	t1=$(now_s); l1=$(lsn); s1=$(stat)
	W_SECS=$(awk -v a="$W_SECS" -v b="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.3f", a + b }')
	W_TRANS=$(( W_TRANS + s1 - s0 ))
	W_WAL=$(( W_WAL + $(walbytes "$l0" "$l1") ))
	viol=$(q "SELECT count(*) FROM lifecycle.violations")
	[ "$viol" -gt "$MAXVIOL" ] && MAXVIOL=$viol

	# App phase.
	timed touch "SELECT count(lifecycle_touch(subject, tenant)) FROM lifecycle.users
		WHERE tenant = 'scale' AND state IN ('active', 'dormant', 'completed')
		  AND (id % 100 < 1 OR (id % 100 < 6 AND (id + $step) % 6 = 0))"
	erased=$(q "SELECT count(*) FROM lifecycle.users WHERE state = 'erased'")
	if [ "$step" -le "$GROW_STEPS" ]; then k=$(( N / 2 / GROW_STEPS ));
	elif [ "$STEADY" = 1 ]; then k=$(( erased - ${ERASED_BEFORE:-0} ));
	else k=$(( N * 3 / 1000 )); fi
	ERASED_BEFORE=$erased
	[ "$k" -gt 0 ] || k=1
	timed invite "SELECT count(lifecycle_invite('u' || i, 'u' || i || '@example.com', 'scale', 'scale',
		'eu', jsonb_build_object('plan', 'pro', 'team', 'team-' || (i % 1000))))
		FROM generate_series($next, $(( next + k - 1 ))) i"
	next=$(( next + k ))
	timed register "SELECT count(lifecycle_register(subject, tenant)) FROM lifecycle.users
		WHERE tenant = 'scale' AND state = 'invited' AND id % 7 <> 0"
	timed complete "SELECT count(lifecycle_complete(subject, tenant)) FROM lifecycle.users
		WHERE tenant = 'scale' AND state = 'active' AND id % 1000 = $step % 1000"
	timed restore "SELECT count(lifecycle_restore(subject, tenant)) FROM lifecycle.users
		WHERE tenant = 'scale' AND state = 'archived' AND id % 200 = $step % 200"
	timed erase "SELECT count(lifecycle_erase(subject, tenant)) FROM lifecycle.users
		WHERE tenant = 'scale' AND state <> 'erased' AND NOT held AND id % 2000 = $step % 2000"
	if [ "$step" = $(( STEPS * 20 / 104 )) ]; then
		timed hold "SELECT count(lifecycle_hold(subject, tenant, 'litigation 2026-41'))
			FROM lifecycle.users WHERE tenant = 'scale' AND state <> 'erased' AND id % 200 = 7"
	fi
	if [ "$step" = $(( STEPS * 30 / 104 )) ]; then
		timed hold "SELECT count(lifecycle_hold(subject, tenant, 'tax audit', lifecycle_now() + interval '20 weeks'))
			FROM lifecycle.users WHERE tenant = 'scale' AND state <> 'erased' AND NOT held AND id % 500 = 11"
	fi
	if [ "$step" = $(( STEPS * 60 / 104 )) ]; then
		timed release "SELECT count(lifecycle_release(subject, tenant)) FROM lifecycle.users
			WHERE tenant = 'scale' AND held AND hold_until IS NULL"
	fi
	if [ "$step" = $(( STEPS / 2 )) ]; then
		q "SELECT lifecycle_define_policy('scale', '{\"channel\": \"sink\", \"dormant_after\": \"60 days\",
			\"erase_after\": \"180 days\"}')" >/dev/null
		if [ "$(has_fn lifecycle_migrate)" = t ]; then
			timed migrate "SELECT lifecycle_migrate('scale')"
			MIGRATED="lifecycle_migrate: ${calls[migrate]} users moved to the new version"
		else
			MIGRATED="new policy version for new users (lifecycle_migrate is not installed)"
		fi
	fi
	# A compressed run gives autovacuum (naptime 1 min) only a few turns
	# where two real years give it thousands: VACUUM_EVERY=k vacuums the
	# three tables every k steps, as autovacuum would have (0: never).
	if [ "$VACUUM_EVERY" -gt 0 ] && [ $(( step % VACUUM_EVERY )) = 0 ]; then
		t0=$(now_s)
		for t in users outbox history; do q "VACUUM lifecycle.$t" >/dev/null; done
		V_SECS=$(awk -v a="$V_SECS" -v b="$(elapsed "$t0" "$(now_s)")" 'BEGIN { printf "%.3f", a + b }')
	fi
	if [ "$AV_EMULATE" = 1 ]; then
		t0=$(now_s)
		for t in users outbox history; do
			case $(q "SELECT CASE WHEN s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
					OR s.n_ins_since_vacuum > 1000 + 0.2 * greatest(c.reltuples, 0) THEN 'vacuum'
				WHEN s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) THEN 'analyze' END
				FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
			   WHERE s.relid = 'lifecycle.$t'::regclass") in
			vacuum) q "VACUUM ANALYZE lifecycle.$t" >/dev/null; AV_RUNS=$(( ${AV_RUNS:-0} + 1 )) ;;
			analyze) q "ANALYZE lifecycle.$t" >/dev/null ;;
			esac
		done
		V_SECS=$(awk -v a="$V_SECS" -v b="$(elapsed "$t0" "$(now_s)")" 'BEGIN { printf "%.3f", a + b }')
	fi
	if [ $(( step % 13 )) = 0 ]; then
		report "scale step $step/$STEPS: worker ${W_SECS}s for $W_TRANS transitions so far; $(q "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM (SELECT state, count(*) n FROM lifecycle.users GROUP BY state) s"); outbox pending $(q "SELECT count(*) FROM lifecycle.outbox WHERE status = 'pending'")"
	fi
done

# Every message delivered: wait for the sender.
t0=$(now_s)
wait_for "NOT EXISTS (SELECT 1 FROM lifecycle.outbox WHERE status = 'pending')" 3600
DRAIN=$(elapsed "$t0" "$(now_s)")
T_END=$(now_s)
L_END=$(lsn)
TOTAL=$(elapsed "$T_START" "$T_END")
report "scale: total ${TOTAL}s for $STEPS steps ($(( STEPS * STEP_DAYS )) days), final sender drain ${DRAIN}s; policy change: $MIGRATED; VACUUM every $VACUUM_EVERY steps (0: autovacuum only), autovacuum's thresholds after every step: $([ "$AV_EMULATE" = 1 ] && echo "${AV_RUNS:-0} vacuums" || echo off); ${V_SECS}s vacuuming; steady population: $STEADY"

HIST=$(q "SELECT count(*) FROM lifecycle.history")
report "scale: events (history rows): $(q "SELECT string_agg(event || ' ' || n, ', ' ORDER BY n DESC) FROM (SELECT event, count(*) n FROM lifecycle.history GROUP BY event) s"); total $HIST"
report "scale: users by state: $(q "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM (SELECT state, count(*) n FROM lifecycle.users GROUP BY state) s")"
report "scale: erasures by reason: $(q "SELECT string_agg(reason || ' ' || n, ', ') FROM (SELECT reason, count(*) n FROM lifecycle.erasures GROUP BY reason) s")"
W_RATE=$(awk -v n="$W_TRANS" -v s="$W_SECS" 'BEGIN { printf "%.0f", n / s }')
report "scale: worker phases ${W_SECS}s for $W_TRANS transitions: $W_RATE transitions/s (includes the 50 ms polling and the sender's concurrent work)"
for c in "${!calls[@]}"; do
	report "scale: app $c: ${calls[$c]} calls in ${secs[$c]}s, $(awk -v n="${calls[$c]}" -v s="${secs[$c]}" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }')/s"
done
TOTAL_WAL=$(walbytes "$L_START" "$L_END")
report "scale: WAL $(( TOTAL_WAL / 1048576 )) MB in total, $(( TOTAL_WAL / HIST )) bytes per history row; worker phases $(( W_WAL / 1048576 )) MB, $(( W_WAL / (W_TRANS > 0 ? W_TRANS : 1) )) bytes per worker transition"
report "scale: violations: max $MAXVIOL after any worker phase, $(q "SELECT count(*) FROM lifecycle.violations") at the end"
read -r created sent cancelled open <<<"$(q "SELECT (SELECT last_value FROM lifecycle.outbox_id_seq),
	count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'cancelled'),
	count(*) FILTER (WHERE status NOT IN ('sent', 'cancelled')) FROM lifecycle.outbox" | tr '|' ' ')"
report "scale: messages: $created written, $sent sent and $cancelled cancelled (erased before delivery) in outbox now, $open not final; sink: $(curl -s "$SINK/stats")"

# The worker against the same writes as one set-based statement, same run.
M=$(( N < 200000 ? N : 200000 ))
set_worker lifecycle.enabled off
qf <<SQL >/dev/null
DROP TABLE IF EXISTS bench_users, bench_history, bench_outbox;
CREATE TABLE bench_users (LIKE lifecycle.users INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE bench_history (LIKE lifecycle.history INCLUDING ALL);
CREATE TABLE bench_outbox (LIKE lifecycle.outbox INCLUDING ALL);
INSERT INTO bench_users (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, next_at, next_event, created_at)
SELECT 'adv', 'user-' || i, 'user-' || i || '@example.com',
	jsonb_build_object('plan', 'pro', 'team', 'team-' || (i % 1000)),
	'eu', 'scale', 1, 'active', n - interval '89 days', n - interval '89 days', 0,
	n - interval '1 hour' + i * interval '1 millisecond', 'dormant', n - interval '100 days'
  FROM generate_series(1, $M) i, lifecycle_now() n;
VACUUM ANALYZE bench_users;
CHECKPOINT;
SQL
t0=$(now_s)
qf <<'SQL' >/dev/null
WITH d AS (
	SELECT id, next_at FROM bench_users WHERE next_at <= lifecycle_now() FOR UPDATE),
u AS (
	UPDATE bench_users u SET state = 'dormant', state_since = lifecycle_now(), step = 0,
		next_at = lifecycle_now() + interval '23 days', next_event = 'archive_reminder',
		retry_at = NULL, retries = 0, last_error = NULL
	  FROM d WHERE u.id = d.id
	RETURNING u.id, u.tenant, u.subject, u.email, u.region, u.policy, u.attrs, d.next_at AS due_at),
h AS (
	INSERT INTO bench_history (user_id, at, due_at, from_state, to_state, event, actor)
	SELECT id, lifecycle_now(), due_at, 'active', 'dormant', 'dormant', 'lifecycle worker' FROM u)
INSERT INTO bench_outbox (user_id, channel, message, payload, status, next_attempt_at, created_at)
SELECT id, 'sink', 'archive_notice',
	jsonb_build_object('subject', subject, 'tenant', tenant, 'email', email,
		'region', region, 'policy', policy, 'attrs', attrs, 'state', 'dormant',
		'archive_at', lifecycle_now() + interval '30 days'),
	'pending', lifecycle_now(), lifecycle_now() FROM u;
SQL
B_S=$(elapsed "$t0" "$(now_s)")
B_RATE=$(awk -v n="$M" -v s="$B_S" 'BEGIN { printf "%.0f", n / s }')
report "scale: the same writes (users UPDATE, history, message) as one set-based statement: $M in ${B_S}s, $B_RATE rows/s; worker phases $W_RATE/s: ratio $(ratio "$W_RATE" "$B_RATE") x"
q "DROP TABLE bench_users, bench_history, bench_outbox" >/dev/null
set_worker lifecycle.enabled on

# Bloat: sizes after VACUUM against a fresh load of the same rows.
sizes() {			# sizes <table>: "heap_bytes index_bytes"
	q "SELECT pg_relation_size('$1'), pg_indexes_size('$1')" | tr '|' ' '
}
for t in users history outbox; do
	q "VACUUM ANALYZE lifecycle.$t" >/dev/null
	read -r h i <<<"$(sizes "lifecycle.$t")"
	ff=""; [ $t = users ] && ff="WITH (fillfactor = 80)"
	q "DROP TABLE IF EXISTS fresh_$t; CREATE TABLE fresh_$t (LIKE lifecycle.$t INCLUDING ALL) $ff;
	   INSERT INTO fresh_$t SELECT * FROM lifecycle.$t ORDER BY id" >/dev/null
	q "VACUUM ANALYZE fresh_$t" >/dev/null
	read -r fh fi <<<"$(sizes "fresh_$t")"
	idx=$(q "SELECT string_agg(i.relname || ' ' || pg_size_pretty(pg_relation_size(i.oid)), ', ' ORDER BY i.relname)
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'lifecycle.$t'::regclass")
	fidx=$(q "SELECT string_agg(pg_size_pretty(pg_relation_size(i.oid)), ', ' ORDER BY i.relname)
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'fresh_$t'::regclass")
	# Where the space is (pgstattuple): the heap's free and dead share, and
	# per index its size against the fresh load's, leaf density and the
	# deleted (recyclable) and empty pages.
	if [ "$(q "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgstattuple'")" = 1 ]; then
		q "CREATE EXTENSION IF NOT EXISTS pgstattuple" >/dev/null
		report "scale: bloat $t heap: $(q "SELECT 'free ' || free_percent || ' %, dead ' || dead_tuple_percent || ' %, live ' || tuple_percent || ' %' FROM pgstattuple('lifecycle.$t')"); fresh: $(q "SELECT 'free ' || free_percent || ' %' FROM pgstattuple('fresh_$t')")"
		q "SELECT i.relname, pg_relation_size(i.oid), f.sz,
				round(pg_relation_size(i.oid)::numeric / nullif(f.sz, 0), 2),
				s.leaf_pages, s.avg_leaf_density, s.deleted_pages, s.empty_pages, f.density
			 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
			 CROSS JOIN LATERAL pgstatindex(i.oid::regclass) s
			 LEFT JOIN LATERAL (SELECT pg_relation_size(fi.oid) AS sz, fs.avg_leaf_density AS density
				  FROM pg_index fx JOIN pg_class fi ON fi.oid = fx.indexrelid
				  CROSS JOIN LATERAL pgstatindex(fi.oid::regclass) fs
				 WHERE fx.indrelid = 'fresh_$t'::regclass
				   AND regexp_replace(pg_get_indexdef(fi.oid), '^.* USING ', '')
					 = regexp_replace(pg_get_indexdef(i.oid), '^.* USING ', '')
				 LIMIT 1) f ON true
			WHERE x.indrelid = 'lifecycle.$t'::regclass ORDER BY 1" |
		while IFS='|' read -r name sz fsz r leaf dens del empty fdens; do
			report "scale: bloat index $name: $(( sz / 1024 )) kB vs fresh $(( ${fsz:-0} / 1024 )) kB (${r:-?} x); $leaf leaf pages, density $dens % (fresh ${fdens:-?} %), $del deleted, $empty empty"
		done
	fi
	report "scale: size $t: $(q "SELECT count(*) FROM lifecycle.$t") rows; heap $(( h / 1048576 )) MB vs fresh $(( fh / 1048576 )) MB (ratio $(ratio "$h" "$fh") x); indexes $(( i / 1048576 )) MB vs fresh $(( fi / 1048576 )) MB (ratio $(ratio "$i" "$fi") x) [$idx | fresh: $fidx]; $(q "SELECT 'autovacuum runs ' || autovacuum_count || ', inserts ' || n_tup_ins || ', updates ' || n_tup_upd || ' (HOT ' || n_tup_hot_upd || '), deletes ' || n_tup_del FROM pg_stat_user_tables WHERE relid = 'lifecycle.$t'::regclass")"
	q "DROP TABLE fresh_$t" >/dev/null
done
