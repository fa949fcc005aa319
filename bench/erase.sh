#!/usr/bin/env bash
# Erasure against the dormant transition, same run, same cluster, same
# lifecycle_tick() (batches of lifecycle.batch_size, default 10k): three
# groups of N users loaded straight into lifecycle.users, each due at its
# own time, advanced one group after the other:
#   dormant  active -> dormant (users UPDATE, history row, archive_notice)
#   erase    archived -> erased, default policy (no hook): users UPDATE,
#            history row, personal data scrubbed, one old outbox message
#            scrubbed, evidence row
#   hook     the same with an erase hook that deletes the application's
#            row (app.accounts, primary key on subject)
# Rate = N / time of the lifecycle_tick() that advances the group; ratio =
# erase rate / dormant rate of the same round.  Rounds alternate with fresh
# data (ERASE_ROUNDS, default 3); the median ratio is the figure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${ERASE_USERS:-100000}
ROUNDS=${ERASE_ROUNDS:-3}

qf <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS app;
CREATE TABLE IF NOT EXISTS app.accounts (subject text PRIMARY KEY, plan text);
CREATE OR REPLACE FUNCTION app.on_erase(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ DELETE FROM app.accounts a WHERE a.subject = on_erase.subject $$;
SELECT lifecycle_define_policy('erahook', '{"hooks": {"erase": "app.on_erase"}}')
 WHERE NOT EXISTS (SELECT 1 FROM lifecycle.policies WHERE name = 'erahook');
SQL

prepare() {			# N users per group, due in 1, 2 and 3 days
	set_worker lifecycle.enabled off
	qf -v n="$N" <<'SQL' >/dev/null
TRUNCATE lifecycle.users, lifecycle.history, lifecycle.outbox, lifecycle.erasures, app.accounts;
INSERT INTO lifecycle.users (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, next_at, next_event, created_at)
SELECT 'dorm', 'user-' || i, 'user-' || i || '@example.com',
	jsonb_build_object('plan', 'pro', 'locale', 'en-GB', 'team', 'team-' || (i % 1000),
		'signup', 'web', 'ref', md5(i::text)),
	'eu', 'default', 1, 'active', t - interval '89 days', t - interval '89 days', 0,
	t + interval '1 day' + i * interval '1 millisecond', 'dormant', t - interval '100 days'
  FROM generate_series(1, :n) i, lifecycle_now() t;
INSERT INTO lifecycle.users (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, next_at, next_event, created_at)
SELECT g.tenant, 'user-' || i, 'user-' || i || '@example.com',
	jsonb_build_object('plan', 'pro', 'locale', 'en-GB', 'team', 'team-' || (i % 1000),
		'signup', 'web', 'ref', md5(i::text)),
	'eu', g.policy, 1, 'archived', t - interval '364 days', t - interval '500 days', 0,
	t + g.due + i * interval '1 millisecond', 'erase_due', t - interval '600 days'
  FROM generate_series(1, :n) i, lifecycle_now() t,
	(VALUES ('era', 'default', interval '2 days'), ('hook', 'erahook', interval '3 days'))
		AS g(tenant, policy, due);
-- One delivered message per archived user (its 'archived' notice), to scrub.
INSERT INTO lifecycle.outbox (user_id, channel, message, payload, status, attempts,
	created_at, sent_at)
SELECT id, NULL, 'archived', jsonb_build_object('subject', subject, 'email', email,
	'attrs', attrs), 'sent', 1, state_since, state_since
  FROM lifecycle.users WHERE state = 'archived';
INSERT INTO app.accounts SELECT 'user-' || i, 'pro' FROM generate_series(1, :n) i;
SQL
	for t in lifecycle.users lifecycle.history lifecycle.outbox lifecycle.erasures app.accounts; do
		q "VACUUM ANALYZE $t" >/dev/null
	done
	q "CHECKPOINT" >/dev/null
}

tick() {			# tick <travel>: prints seconds of one lifecycle_tick()
	local t0 t1 n
	q "SELECT lifecycle_travel('$1')" >/dev/null
	q "CHECKPOINT" >/dev/null
	t0=$(now_s)
	n=$(q "SELECT lifecycle_tick()")
	t1=$(now_s)
	[ "$n" = "$N" ] || { echo "expected $N transitions, got $n" >&2; exit 1; }
	elapsed "$t0" "$t1"
}

med() { echo $1 | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
report "== erasure vs dormant, $N users per group ($(date -u +%FT%TZ))"
r1=""; r2=""
for r in $(seq "$ROUNDS"); do
	prepare
	sd=$(tick '1 day 1 hour')
	se=$(tick '1 day')
	sh=$(tick '1 day')
	left=$(q "SELECT count(*) FROM lifecycle.users WHERE state <> 'erased' AND tenant <> 'dorm'")
	pii=$(q "SELECT count(*) FROM lifecycle.users WHERE state = 'erased' AND (subject IS NOT NULL OR email IS NOT NULL OR attrs <> '{}')")
	ev=$(q "SELECT count(*) FROM lifecycle.erasures")
	app=$(q "SELECT count(*) FROM app.accounts")
	scrub=$(q "SELECT count(*) FROM lifecycle.outbox WHERE message = 'archived' AND payload <> '{}'")
	rd=$(awk -v n="$N" -v s="$sd" 'BEGIN { printf "%.0f", n / s }')
	re=$(awk -v n="$N" -v s="$se" 'BEGIN { printf "%.0f", n / s }')
	rh=$(awk -v n="$N" -v s="$sh" 'BEGIN { printf "%.0f", n / s }')
	r1="$r1 $(ratio "$re" "$rd")"; r2="$r2 $(ratio "$rh" "$rd")"
	report "erase round $r: dormant ${sd}s $rd/s; erase ${se}s $re/s (ratio $(ratio "$re" "$rd") x); erase+hook ${sh}s $rh/s (ratio $(ratio "$rh" "$rd") x); check: $left not erased, $pii with personal data, $ev evidence rows, $app app rows left, $scrub messages unscrubbed"
done
set_worker lifecycle.enabled on
report "erase: median ratio $(med "$r1") x (no hook), $(med "$r2") x (erase hook deleting the app row) vs dormant ($N users per group, $ROUNDS rounds)"

# Where the time goes: EXPLAIN ANALYZE of the statements of one erasure
# tick (auto_explain, nested statements), ERASE_EXPLAIN=1.
if [ "${ERASE_EXPLAIN:-0}" = 1 ]; then
	prepare
	q "SELECT lifecycle_travel('2 days 1 hour')" >/dev/null
	q "UPDATE lifecycle.users SET next_at = NULL WHERE tenant = 'dorm'" >/dev/null
	mark=$(wc -c < "$BENCH_DATA/server.log")
	qf <<'SQL' >/dev/null
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_min_duration = 0;
SET client_min_messages = warning;
SET log_min_messages = log;
SELECT lifecycle_tick(10000);
SQL
	tail -c +"$mark" "$BENCH_DATA/server.log" > "${BENCH_EXPLAIN:-/tmp/lifecycle-bench-erase-explain.log}"
	report "auto_explain of one 10k erasure batch: ${BENCH_EXPLAIN:-/tmp/lifecycle-bench-erase-explain.log}"
fi
