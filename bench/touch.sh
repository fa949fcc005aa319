#!/usr/bin/env bash
# lifecycle_touch() of users touched within touch_granularity (the no-op
# path, what an application calls on every request) against a SELECT of
# the same row by its unique key, 8 pgbench clients; and the WAL each run
# writes (pg_current_wal_lsn before and after): the touch run must write no
# more than the SELECT-only run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=${TOUCH_SECONDS:-10}
ROUNDS=${TOUCH_ROUNDS:-3}
C=${TOUCH_CLIENTS:-8}
N=${TOUCH_USERS:-100000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Other load on the machine shifts single runs by tens of percent: the
# two runs alternate ROUNDS times and each round gives a ratio; the median
# ratio is the figure.
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

run() {				# run <script>: prints "tps wal_bytes xids"
	local l0 l1 x0 x1 tps
	l0=$(q "SELECT pg_current_wal_lsn()")
	x0=$(q "SELECT pg_current_xact_id()")
	tps=$(pgbench -n -M prepared -c "$C" -j 2 -T "$T" -f "$1" 2>/dev/null |
		awk '/^tps = / { printf "%.0f", $3 }')
	x1=$(q "SELECT pg_current_xact_id()")
	l1=$(q "SELECT pg_current_wal_lsn()")
	echo "$tps $(q "SELECT pg_wal_lsn_diff('$l1', '$l0')") $(q "SELECT '$x1'::xid8::text::bigint - '$x0'::xid8::text::bigint - 1")"
}
# No background writer of WAL during the runs: worker idle, autovacuum off,
# tables vacuumed (hint bits and visibility map set) and a checkpoint first.
set_worker lifecycle.enabled off
set_worker autovacuum off
q "VACUUM ANALYZE lifecycle.users" >/dev/null
q "CHECKPOINT" >/dev/null
# Warm both paths once (caches) before measuring.
pgbench -n -M prepared -c "$C" -j 2 -T 3 -f "$dir/select.sql" >/dev/null 2>&1
pgbench -n -M prepared -c "$C" -j 2 -T 3 -f "$dir/touch.sql" >/dev/null 2>&1
ratios=""
for r in $(seq "$ROUNDS"); do
	read -r sel sel_wal sel_xid < <(run "$dir/select.sql")
	read -r tch tch_wal tch_xid < <(run "$dir/touch.sql")
	ratios="$ratios $(ratio "$tch" "$sel")"
	report "touch round $r: lifecycle_touch() $tch tps vs unique-key SELECT $sel tps, ratio $(ratio "$tch" "$sel") x; WAL touch $tch_wal bytes / SELECT $sel_wal bytes; xids assigned touch $tch_xid / SELECT $sel_xid"
done
set_worker autovacuum on
set_worker lifecycle.enabled on
median=$(echo $ratios | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
changed=$(q "SELECT count(*) FROM lifecycle.users WHERE tenant = 'bench-touch' AND last_seen <> state_since")
report "touch: median ratio $median x over $ROUNDS rounds ($C clients, ${T}s per run); users whose last_seen moved: $changed"
