#!/usr/bin/env bash
# lifecycle_invite() from 8 pgbench clients against a plain single-row
# INSERT into a table of the same shape as lifecycle.users (same columns,
# indexes and fillfactor), same clients, same duration.
# lifecycle_invite() also writes its history row and invite message (three
# rows, one statement) and checks its arguments, the tenant grant and the
# policy; the baseline writes one row.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=${INVITE_SECONDS:-10}
ROUNDS=${INVITE_ROUNDS:-3}
C=${INVITE_CLIENTS:-8}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

qf <<'SQL' >/dev/null
DROP TABLE IF EXISTS bench_invite, bench_invite_history, bench_invite_outbox;
CREATE TABLE bench_invite (LIKE lifecycle.users INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE bench_invite_history (LIKE lifecycle.history INCLUDING ALL);
CREATE TABLE bench_invite_outbox (LIKE lifecycle.outbox INCLUDING ALL);
SQL
# Unique subjects: client id, then a random part (a rare repeat is an
# idempotent no-op in lifecycle_invite and an ON CONFLICT no-op below).
cat > "$dir/invite.sql" <<'SQL'
\set r random(1, 1000000000000)
SELECT lifecycle_invite('inv-' || :client_id || '-' || :r, 'inv' || :r || '@example.com', 'bench-invite', 'default', 'eu', '{"plan": "pro"}');
SQL
cat > "$dir/insert.sql" <<'SQL'
\set r random(1, 1000000000000)
INSERT INTO bench_invite (tenant, subject, email, attrs, region, policy, policy_version, state, state_since, step, next_at, next_event, created_at) VALUES ('bench-invite', 'inv-' || :client_id || '-' || :r, 'inv' || :r || '@example.com', '{"plan": "pro"}', 'eu', 'default', 1, 'invited', now(), 0, now() + interval '3 days', 'invite_reminder', now()) ON CONFLICT DO NOTHING;
SQL
# A second, informative baseline: the same three rows lifecycle_invite()
# writes (user, history, message), in one plain SQL statement.
cat > "$dir/insert3.sql" <<'SQL'
\set r random(1, 1000000000000)
WITH u AS (INSERT INTO bench_invite (tenant, subject, email, attrs, region, policy, policy_version, state, state_since, step, next_at, next_event, created_at) VALUES ('bench-invite', 'inv-' || :client_id || '-' || :r, 'inv' || :r || '@example.com', '{"plan": "pro"}', 'eu', 'default', 1, 'invited', now(), 0, now() + interval '3 days', 'invite_reminder', now()) ON CONFLICT DO NOTHING RETURNING *), h AS (INSERT INTO bench_invite_history (user_id, at, from_state, to_state, event, actor) SELECT id, now(), NULL, 'invited', 'invite', 'postgres' FROM u) INSERT INTO bench_invite_outbox (user_id, channel, message, payload, status, next_attempt_at, created_at) SELECT id, NULL, 'invite', jsonb_build_object('subject', subject, 'tenant', tenant, 'email', email, 'region', region, 'policy', policy, 'attrs', attrs, 'state', 'invited'), 'unrouted', NULL, now() FROM u;
SQL

run() {
	pgbench -n -M prepared -c "$C" -j 2 -T "$T" -f "$1" 2>/dev/null |
		awk '/^tps = / { printf "%.0f", $3 }'
}
set_worker lifecycle.enabled off	# the worker idles (no timer is due anyway)
# Other load on the machine shifts single runs by tens of percent: the runs
# alternate ROUNDS times; the median ratio is the figure.
ratios=""; ratios3=""
for r in $(seq "$ROUNDS"); do
	q "CHECKPOINT" >/dev/null
	base=$(run "$dir/insert.sql")
	q "CHECKPOINT" >/dev/null
	inv=$(run "$dir/invite.sql")
	q "CHECKPOINT" >/dev/null
	base3=$(run "$dir/insert3.sql")
	ratios="$ratios $(ratio "$inv" "$base")"; ratios3="$ratios3 $(ratio "$inv" "$base3")"
	report "invite round $r: lifecycle_invite() $inv tps, plain INSERT $base tps (ratio $(ratio "$inv" "$base") x), same three rows in one SQL statement $base3 tps (ratio $(ratio "$inv" "$base3") x)"
done
set_worker lifecycle.enabled on
med() { echo $1 | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rows=$(q "SELECT count(*) FROM lifecycle.users WHERE tenant = 'bench-invite'")
report "invite: median ratio $(med "$ratios") x vs plain INSERT, $(med "$ratios3") x vs the same writes in SQL ($C clients, ${T}s per run, $ROUNDS rounds, $rows users invited)"
