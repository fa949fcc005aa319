#!/usr/bin/env bash
# lifecycle_adopt() of ADOPT_ROWS (1,000,000) application accounts against a
# plain INSERT ... SELECT of the same rows into tables of the same shape as
# lifecycle.users and lifecycle.history (same columns, indexes, fillfactor):
# one user row and one history row per account, timers computed in SQL.
# Adoption also checks every row (subject, e-mail, attrs, duplicates in the
# source) before it inserts anything, reads the relation as the caller and
# skips subjects the tenant knows.  Then, on the adopted users:
# lifecycle_migrate() of all of them to a new version, and
# lifecycle_forecast() (90 days, current policy and a proposed definition).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${ADOPT_ROWS:-1000000}
ROUNDS=${ADOPT_ROUNDS:-2}

set_worker lifecycle.enabled off	# nothing advances while we measure
qf <<SQL >/dev/null
DROP TABLE IF EXISTS bench_accounts, bench_adopt_users, bench_adopt_history;
-- Two thirds stale (seen 100 to 800 days ago), one tenth never registered.
CREATE TABLE bench_accounts AS
SELECT 'acct-' || i AS subject, 'user' || i || '@example.com' AS email,
	   now() - ((i::bigint * 7919) % 800) * interval '1 day' AS last_seen,
	   i % 10 <> 0 AS registered,
	   jsonb_build_object('plan', CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END) AS attrs
  FROM generate_series(1, $N) i;
VACUUM ANALYZE bench_accounts;
CREATE TABLE bench_adopt_users (LIKE lifecycle.users INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE bench_adopt_history (LIKE lifecycle.history INCLUDING ALL);
SQL

# cpu_timed <sql>: "wall cpu" seconds of one statement: the wall time, and
# the CPU time its backend used (utime + stime from /proc, in ticks of
# 1/100 s), which other load on the machine inflates far less.
cpu_timed() {
	qf <<SQL | awk '/^cpu0 / { c0 = $2 } /^cpu1 / { c1 = $2 } /^wall / { w = $2 } END { printf "%.3f %.2f", w, (c1 - c0) / 100 }'
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_BACKEND :pid
\! awk '{ print "cpu0", \$14 + \$15 }' /proc/\$BENCH_BACKEND/stat
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
$1;
\o
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS wall \gset
\! awk '{ print "cpu1", \$14 + \$15 }' /proc/\$BENCH_BACKEND/stat
\echo wall :wall
SQL
}
timed() {	# timed <sql>: seconds
	local a b
	q "CHECKPOINT" >/dev/null
	a=$(now_s); q "$1" >/dev/null; b=$(now_s)
	elapsed "$a" "$b"
}
med() { echo $1 | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ratios=""
for r in $(seq "$ROUNDS"); do
	q "TRUNCATE bench_adopt_users, bench_adopt_history" >/dev/null
	q "DELETE FROM lifecycle.history WHERE user_id IN (SELECT id FROM lifecycle.users WHERE tenant = 'bench-adopt')" >/dev/null
	q "DELETE FROM lifecycle.users WHERE tenant = 'bench-adopt'" >/dev/null
	q "VACUUM lifecycle.users, lifecycle.history" >/dev/null
	base=$(timed "WITH u AS (
		INSERT INTO bench_adopt_users (tenant, subject, email, attrs, region, policy,
			policy_version, state, state_since, last_seen, step, next_at, next_event, created_at)
		SELECT 'bench-adopt', subject, email, attrs, NULL, 'default', 1,
			CASE WHEN registered THEN 'active' ELSE 'expired' END::lifecycle.state, now(),
			last_seen, 0, GREATEST(last_seen + interval '90 days', now()),
			CASE WHEN registered THEN 'dormant' ELSE 'erase' END, now()
		  FROM bench_accounts RETURNING id, state)
		INSERT INTO bench_adopt_history (user_id, at, from_state, to_state, event, actor)
		SELECT id, now(), NULL, state, 'adopt', 'bench' FROM u")
	adopt=$(timed "SELECT * FROM lifecycle_adopt('bench_accounts', 'bench-adopt')")
	ratios="$ratios $(ratio "$base" "$adopt")"
	report "adopt round $r: lifecycle_adopt() of $N accounts ${adopt}s ($(awk -v n="$N" -v t="$adopt" 'BEGIN { printf "%.0f", n / t }') users/s), plain INSERT ... SELECT of the same user and history rows ${base}s (ratio $(ratio "$base" "$adopt") x)"
done
users=$(q "SELECT count(*) FROM lifecycle.users WHERE tenant = 'bench-adopt'")
report "adopt: median ratio $(med "$ratios") x vs plain INSERT ... SELECT ($N accounts, $ROUNDS rounds, $users users adopted)"

# ADOPT_EXTRAS=0 (bench/compare.sh): adoption alone, then clean up.
if [ "${ADOPT_EXTRAS:-1}" = 1 ]; then
	again=$(timed "SELECT * FROM lifecycle_adopt('bench_accounts', 'bench-adopt')")
	report "adopt again (every subject known, all skipped): ${again}s"

	q "CHECKPOINT" >/dev/null
	read -r fcw fcc <<<"$(cpu_timed "SELECT count(*) FROM lifecycle_forecast('90 days', tenant => 'bench-adopt')")"
	read -r fdw fdc <<<"$(cpu_timed "SELECT count(*) FROM lifecycle_forecast('90 days', 'default', 'bench-adopt', '{\"dormant_after\": \"30 days\", \"archive_after\": \"14 days\"}')")"
	report "forecast of $users users, 90 days: current policy ${fcw}s (backend CPU ${fcc}s), proposed definition (every running user re-armed) ${fdw}s (CPU ${fdc}s)"

	q "SELECT lifecycle_define_policy('bench_adopt', '{\"dormant_after\": \"90 days\"}')" >/dev/null
	q "UPDATE lifecycle.users SET policy = 'bench_adopt' WHERE tenant = 'bench-adopt'" >/dev/null
	q "SELECT lifecycle_define_policy('bench_adopt', '{\"dormant_after\": \"60 days\"}')" >/dev/null
	q "VACUUM ANALYZE lifecycle.users" >/dev/null
	q "CHECKPOINT" >/dev/null
	read -r mg mgc <<<"$(cpu_timed "SELECT lifecycle_migrate('bench_adopt')")"
	report "migrate $users users to a new version (timers re-armed, one history row each): ${mg}s, backend CPU ${mgc}s ($(awk -v n="$users" -v t="$mg" 'BEGIN { printf "%.0f", n / t }') users/s)"
fi

# Leave nothing due for the benchmarks that follow.
q "DELETE FROM lifecycle.history WHERE user_id IN (SELECT id FROM lifecycle.users WHERE tenant = 'bench-adopt')" >/dev/null
q "DELETE FROM lifecycle.users WHERE tenant = 'bench-adopt'" >/dev/null
q "DROP TABLE bench_accounts, bench_adopt_users, bench_adopt_history" >/dev/null
set_worker lifecycle.enabled on
