#!/usr/bin/env bash
# Bulk invitation: SELECT lifecycle_invite(...) FROM generate_series(...)
# in statements of BULK_BATCH (1,000) users, against plain multi-row
# INSERTs of the same rows in the same run, on the same cluster:
#   users only   INSERT INTO a copy of lifecycle.users SELECT ... (one row
#                per user, the copy has the same columns and indexes)
#   same writes  the three rows lifecycle_invite() writes (user, history
#                row, invite message with its jsonb payload) as one
#                set-based statement
# BULK_USERS users per side (default 100,000), BULK_ROUNDS alternating
# rounds (default 3); the median ratio is the figure.  A checkpoint before
# each side.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${BULK_USERS:-100000}
B=${BULK_BATCH:-1000}
ROUNDS=${BULK_ROUNDS:-3}

qf <<'SQL' >/dev/null
DROP TABLE IF EXISTS bulk_users, bulk_history, bulk_outbox;
CREATE TABLE bulk_users (LIKE lifecycle.users INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE bulk_history (LIKE lifecycle.history INCLUDING ALL);
CREATE TABLE bulk_outbox (LIKE lifecycle.outbox INCLUDING ALL);
SQL
set_worker lifecycle.enabled off

side() {			# side <sql with :lo :hi>: seconds for N users
	local t0 lo
	q "CHECKPOINT" >/dev/null
	t0=$(now_s)
	for lo in $(seq 1 "$B" "$N"); do
		echo "$1" | sed "s/:lo/$lo/g; s/:hi/$(( lo + B - 1 ))/g"
	done | psql -X -q -At -v ON_ERROR_STOP=1 >/dev/null
	elapsed "$t0" "$(now_s)"
}
med() { echo $1 | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
report "== bulk invite, $N users per side in statements of $B ($(date -u +%FT%TZ))"
r1=""; r3=""
for r in $(seq "$ROUNDS"); do
	q "DELETE FROM lifecycle.users WHERE tenant = 'bulk'; TRUNCATE bulk_users, bulk_history, bulk_outbox" >/dev/null
	q "VACUUM lifecycle.users" >/dev/null
	si=$(side "SELECT count(lifecycle_invite('b$r-' || i, 'b$r-' || i || '@example.com', 'bulk', 'default', 'eu', '{\"plan\": \"pro\"}')) FROM generate_series(:lo, :hi) i;")
	s1=$(side "INSERT INTO bulk_users (tenant, subject, email, attrs, region, policy, policy_version, state, state_since, step, next_at, next_event, created_at) SELECT 'bulk', 'b$r-' || i, 'b$r-' || i || '@example.com', '{\"plan\": \"pro\"}', 'eu', 'default', 1, 'invited', now(), 0, now() + interval '3 days', 'invite_reminder', now() FROM generate_series(:lo, :hi) i ON CONFLICT DO NOTHING;")
	q "TRUNCATE bulk_users" >/dev/null
	s3=$(side "WITH u AS (INSERT INTO bulk_users (tenant, subject, email, attrs, region, policy, policy_version, state, state_since, step, next_at, next_event, created_at) SELECT 'bulk', 'b$r-' || i, 'b$r-' || i || '@example.com', '{\"plan\": \"pro\"}', 'eu', 'default', 1, 'invited', now(), 0, now() + interval '3 days', 'invite_reminder', now() FROM generate_series(:lo, :hi) i ON CONFLICT DO NOTHING RETURNING *), h AS (INSERT INTO bulk_history (user_id, at, from_state, to_state, event, actor) SELECT id, now(), NULL, 'invited', 'invite', 'postgres' FROM u) INSERT INTO bulk_outbox (user_id, channel, message, payload, status, next_attempt_at, created_at) SELECT id, NULL, 'invite', jsonb_build_object('subject', subject, 'tenant', tenant, 'email', email, 'region', region, 'policy', policy, 'attrs', attrs, 'state', 'invited'), 'unrouted', NULL, now() FROM u;")
	ri=$(awk -v n="$N" -v s="$si" 'BEGIN { printf "%.0f", n / s }')
	r1v=$(awk -v n="$N" -v s="$s1" 'BEGIN { printf "%.0f", n / s }')
	r3v=$(awk -v n="$N" -v s="$s3" 'BEGIN { printf "%.0f", n / s }')
	r1="$r1 $(ratio "$ri" "$r1v")"; r3="$r3 $(ratio "$ri" "$r3v")"
	report "bulk invite round $r: lifecycle_invite() ${si}s $ri/s; multi-row INSERT users only ${s1}s $r1v/s (ratio $(ratio "$ri" "$r1v") x); same three rows set-based ${s3}s $r3v/s (ratio $(ratio "$ri" "$r3v") x)"
done
set_worker lifecycle.enabled on
report "bulk invite: median ratio $(med "$r1") x vs multi-row INSERT of the users, $(med "$r3") x vs the same writes set-based ($N users, batches of $B, $ROUNDS rounds)"
