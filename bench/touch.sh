#!/usr/bin/env bash
# lifecycle_touch() of users touched within touch_granularity (the no-op
# path, what an application calls on every request) against a SELECT of
# the same row by its unique key, 8 pgbench clients; and the WAL each run
# writes (pg_current_wal_lsn before and after): the touch run must write no
# more than the SELECT-only run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=${TOUCH_SECONDS:-30}
C=${TOUCH_CLIENTS:-8}
N=${TOUCH_USERS:-100000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# N active users seen just now (loaded directly: active, last_seen = now).
qf <<SQL >/dev/null
DELETE FROM lifecycle.users WHERE tenant = 'bench-touch';
INSERT INTO lifecycle.users (tenant, subject, email, attrs, region, policy, policy_version,
	state, state_since, last_seen, step, next_at, next_event, created_at)
SELECT 'bench-touch', 'touch-' || i, 'touch-' || i || '@example.com', '{}', 'eu',
	'default', 1, 'active', n, n, 0, n + interval '90 days', 'dormant', n
  FROM generate_series(1, $N) i, lifecycle_now() n;
VACUUM ANALYZE lifecycle.users;
SQL
cat > "$dir/touch.sql" <<SQL
\set i random(1, $N)
SELECT lifecycle_touch('touch-' || :i, 'bench-touch');
SQL
cat > "$dir/select.sql" <<SQL
\set i random(1, $N)
SELECT state FROM lifecycle.users WHERE tenant = 'bench-touch' AND subject = 'touch-' || :i;
SQL

run() {				# run <script>: prints "tps wal_bytes"
	local l0 l1 tps
	q "CHECKPOINT" >/dev/null
	l0=$(q "SELECT pg_current_wal_lsn()")
	tps=$(pgbench -n -M prepared -c "$C" -j 2 -T "$T" -f "$1" 2>/dev/null |
		awk '/^tps = / { printf "%.0f", $3 }')
	l1=$(q "SELECT pg_current_wal_lsn()")
	echo "$tps $(q "SELECT pg_wal_lsn_diff('$l1', '$l0')")"
}
set_worker lifecycle.enabled off
# Warm both paths once (caches, hint bits) before measuring.
pgbench -n -M prepared -c "$C" -j 2 -T 3 -f "$dir/select.sql" >/dev/null 2>&1
pgbench -n -M prepared -c "$C" -j 2 -T 3 -f "$dir/touch.sql" >/dev/null 2>&1
read -r sel sel_wal < <(run "$dir/select.sql")
read -r tch tch_wal < <(run "$dir/touch.sql")
set_worker lifecycle.enabled on
changed=$(q "SELECT count(*) FROM lifecycle.users WHERE tenant = 'bench-touch' AND last_seen <> state_since")
report "touch: lifecycle_touch() $tch tps vs unique-key SELECT $sel tps, ratio $(ratio "$tch" "$sel") x ($C clients, ${T}s each)"
report "touch WAL: touch run $tch_wal bytes, SELECT run $sel_wal bytes, difference $((tch_wal - sel_wal)) bytes; users whose last_seen moved: $changed"
