#!/usr/bin/env bash
# The lifecycle demo: a throwaway cluster, 10,000 users, two simulated years.
#
#   bash scripts/demo.sh          # as root (or it re-runs itself with sudo)
#
# Installs what is missing (scripts/deps.sh), builds and installs the
# extension from a temporary copy, starts a private cluster as the postgres
# OS user (Unix socket in a temporary directory, no TCP), and the local
# webhook sink of test/sinks/ if there is one.  The application starts
# with an existing user base (60% of DEMO_USERS: stale accounts, active
# ones, never-confirmed sign-ups) in its own table, adopted with
# lifecycle_adopt() (one call per tenant, from a view; the stale accounts'
# notices spread over two weeks).  Then it invites newcomers, registers,
# touches, completes, restores and erases users for 104 weeks of the
# lifecycle clock (lifecycle_travel()) while the real scheduler worker
# advances their timers; after each week the demo waits until
# lifecycle.overdue is empty.  At week DEMO_MIGRATE_WEEK the DPO shortens
# the policy: the demo prints lifecycle_forecast() of the current and the
# proposed definition, draws both as a chart (gnuplot), and moves the
# running users with lifecycle_migrate().  At the end it prints the
# retention report, the (empty) violations view, the delivery summary, the
# worker stats and a sample of lifecycle.metrics, and renders
# lifecycle_graph() to a PNG.  Everything but the two PNGs is removed on
# exit.
#
# Environment: DEMO_USERS (10000), DEMO_WEEKS (104), DEMO_MIGRATE_WEEK (26),
# DEMO_PORT (7520), DEMO_SINK_PORT (7521), DEMO_KEEP=1 keeps the cluster
# directory.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
src=$(pwd)

USERS=${DEMO_USERS:-10000}
WEEKS=${DEMO_WEEKS:-104}
MIGRATE_WEEK=${DEMO_MIGRATE_WEEK:-26}
PORT=${DEMO_PORT:-7520}
SINK_PORT=${DEMO_SINK_PORT:-7521}
BIN=/usr/lib/postgresql/15/bin
started=$(date +%s)

# Does something accept connections on 127.0.0.1:$1?  (bash only, no ss)
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "dependencies (scripts/deps.sh)"
bash scripts/deps.sh

work=$(mktemp -d /tmp/lifecycle-demo.XXXXXX)
chmod 755 "$work"
png=/tmp/lifecycle-demo-graph.png
forecast_png=/tmp/lifecycle-demo-forecast.png
sink_pid=""
exporter_pid=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$exporter_pid" ] && kill -0 "$exporter_pid" 2>/dev/null; then
		kill "$exporter_pid" 2>/dev/null || true
		wait "$exporter_pid" 2>/dev/null || true
	fi
	if [ -n "$sink_pid" ] && kill -0 "$sink_pid" 2>/dev/null; then
		kill "$sink_pid" 2>/dev/null || true
		wait "$sink_pid" 2>/dev/null || true
	fi
	if [ -f "$work/data/postmaster.pid" ]; then
		runuser -u postgres -- "$BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -f "$work/postgres.log" ]; then
		echo "--- last lines of the server log"
		tail -n 30 "$work/postgres.log"
	fi
	if [ -n "${DEMO_KEEP:-}" ]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "build and install (in $work/src)"
rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
	--exclude 'tmp_check*' --exclude results ./ "$work/src/"
make -C "$work/src" -s -j2 >/dev/null
make -C "$work/src" -s install >/dev/null

as_pg() { runuser -u postgres -- "$@"; }
psql_demo() {
	as_pg "$BIN/psql" -h "$work" -p "$PORT" -d demo -X -q -v ON_ERROR_STOP=1 "$@"
}

say "throwaway cluster on socket $work, port $PORT"
chown postgres: "$work"
as_pg "$BIN/initdb" -D "$work/data" -A trust -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$work'
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'demo'
lifecycle.allow_time_travel = on       # the demo's clock; never in production
lifecycle.allow_private_targets = on   # the sink listens on loopback
# a throwaway cluster: speed over durability
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %b '
EOF
as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w start >/dev/null
as_pg "$BIN/createdb" -h "$work" -p "$PORT" demo

# The local webhook sink (test/sinks/), if the tree has one.
channel=null
sink=""
[ -f test/sinks/webhook_sink.py ] && sink=test/sinks/webhook_sink.py
secret="whsec_$(head -c 24 /dev/urandom | base64)"
if [ -n "$sink" ]; then
	if listening "$SINK_PORT"; then
		echo "port $SINK_PORT is taken: running without the webhook sink"
	else
		python3 "$sink" --port "$SINK_PORT" --secret "$secret" \
			--log "$work/sink.jsonl" >"$work/sink.log" 2>&1 &
		sink_pid=$!
		for _ in $(seq 50); do
			listening "$SINK_PORT" && break
			kill -0 "$sink_pid" 2>/dev/null || break
			sleep 0.1
		done
		if listening "$SINK_PORT"; then
			say "webhook sink $sink on 127.0.0.1:$SINK_PORT"
			channel='"notices"'
		else
			echo "the webhook sink did not start (see below): running without it"
			tail -n 5 "$work/sink.log" || true
			sink_pid=""
		fi
	fi
else
	echo "no webhook sink in test/sinks/: notices stay in lifecycle.outbox as 'unrouted'"
fi

say "extension, the application's table and hooks, policy"
psql_demo <<EOF
CREATE EXTENSION lifecycle;
-- The application's own accounts; the policy's hooks keep them in step
-- with the lifecycle in the same transaction.  "k" and "kind" drive the
-- simulated behaviour.
CREATE TABLE app_accounts (
	tenant text, subject text, k int, kind text,
	archived boolean NOT NULL DEFAULT false,
	email text, last_login timestamptz, confirmed boolean,
	plan text, country text,
	PRIMARY KEY (tenant, subject));
CREATE FUNCTION app_archive(subject text, tenant text) RETURNS void
	LANGUAGE sql AS \$\$ UPDATE public.app_accounts a SET archived = true
		WHERE a.tenant = \$2 AND a.subject = \$1 \$\$;
CREATE FUNCTION app_restore(subject text, tenant text) RETURNS void
	LANGUAGE sql AS \$\$ UPDATE public.app_accounts a SET archived = false
		WHERE a.tenant = \$2 AND a.subject = \$1 \$\$;
CREATE FUNCTION app_erase(subject text, tenant text) RETURNS void
	LANGUAGE sql AS \$\$ DELETE FROM public.app_accounts a
		WHERE a.tenant = \$2 AND a.subject = \$1 \$\$;
\o /dev/null
$( [ "$channel" != null ] && echo "SELECT lifecycle_add_channel('notices', 'webhook', 'http://127.0.0.1:$SINK_PORT/hooks', '$secret');" )
\o
SELECT lifecycle_define_policy('saas', '{
	"dormant_after": "90 days", "archive_after": "30 days",
	"erase_after": "365 days", "channel": $channel,
	"hooks": {"archive": "app_archive", "restore": "app_restore",
			  "erase": "app_erase"}}') AS policy_version \gset
-- Wait (in its own transactions) until the worker has fired every due timer.
CREATE PROCEDURE demo_wait(timeout_s float8 = 60) LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint;
BEGIN
	LOOP
		SELECT count(*) INTO n FROM lifecycle.overdue;
		EXIT WHEN n = 0;
		IF clock_timestamp() - t0 > make_interval(secs => timeout_s) THEN
			RAISE EXCEPTION 'the worker left % timers overdue for % s', n, timeout_s;
		END IF;
		COMMIT;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$;
-- One week of the application: invitations, registrations, activity,
-- completions, returning users, an erasure request, legal holds.
CREATE PROCEDURE demo_week(week int, invites int, first_k int) LANGUAGE plpgsql AS \$\$
BEGIN
	-- New people, two tenants, two regions.  kind (by k): 15% never
	-- register, 5% register after the reminders, the rest at once; of
	-- those, 40% use the product every week, 30% now and then, 30% churn.
	INSERT INTO app_accounts (tenant, subject, k, kind)
	SELECT CASE WHEN k % 3 = 0 THEN 'globex' ELSE 'acme' END, 'user' || k, k,
		   CASE WHEN k % 20 < 3 THEN 'ghost' WHEN k % 20 = 3 THEN 'late'
				WHEN k % 10 < 4 THEN 'engaged' WHEN k % 10 < 7 THEN 'casual'
				ELSE 'churner' END
	  FROM generate_series(first_k, first_k + invites - 1) k;
	PERFORM lifecycle_invite(a.subject, a.subject || '@example.com', a.tenant, 'saas',
							 CASE WHEN a.k % 2 = 0 THEN 'eu' ELSE 'us' END,
							 jsonb_build_object('plan', CASE WHEN a.k % 5 = 0 THEN 'pro' ELSE 'free' END))
	  FROM app_accounts a WHERE a.k >= first_k AND a.k < first_k + invites;
	COMMIT;
	PERFORM lifecycle_register(a.subject, a.tenant)
	  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
	 WHERE u.state = 'invited'
	   AND ((a.kind NOT IN ('ghost', 'late') AND a.k >= first_k)
			OR (a.kind = 'late' AND a.k < first_k));
	COMMIT;
	-- Activity (touch writes at most once per hour per user).
	PERFORM lifecycle_touch(a.subject, a.tenant)
	  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
	 WHERE u.state = 'active'
	   AND (a.kind = 'engaged' OR (a.kind = 'casual' AND (a.k + week) % 8 = 0));
	-- A few churned users come back while dormant.
	PERFORM lifecycle_touch(a.subject, a.tenant)
	  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
	 WHERE u.state = 'dormant' AND (a.k + week) % 40 = 0;
	COMMIT;
	-- Engagements end (about 0.7% of engaged users a week).
	PERFORM lifecycle_complete(a.subject, a.tenant)
	  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
	 WHERE u.state = 'active' AND a.kind = 'engaged' AND (a.k * 7 + week) % 150 = 0;
	-- Returning users: about 1% of the archived come back each week.
	PERFORM lifecycle_restore(a.subject, a.tenant)
	  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
	 WHERE u.state = 'archived' AND (a.k + week) % 97 = 0;
	COMMIT;
	-- Legal holds: week 8, three churners of acme (one hold lapses after
	-- a year by itself); week 90, one is released.
	IF week = 8 THEN
		PERFORM lifecycle_hold(a.subject, a.tenant, 'litigation 2024-17',
							   CASE WHEN n = 3 THEN lifecycle_now() + interval '1 year' END)
		  FROM (SELECT a.*, row_number() OVER (ORDER BY a.k) AS n
				  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
				 WHERE a.kind = 'churner' AND a.tenant = 'acme' AND u.state = 'active'
				 ORDER BY a.k LIMIT 3) a;
	END IF;
	IF week = 90 THEN
		PERFORM lifecycle_release(h.subject, h.tenant)
		  FROM (SELECT * FROM lifecycle.holds ORDER BY id LIMIT 1) h;
	END IF;
	-- Erasure requests (right to be forgotten): week 30, five users.
	IF week = 30 THEN
		PERFORM lifecycle_erase(a.subject, a.tenant, 'data subject request (Art. 17)')
		  FROM (SELECT a.* FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
				 WHERE u.state IN ('active', 'dormant') AND NOT u.held
				 ORDER BY a.k LIMIT 5) a;
	END IF;
	COMMIT;
	-- One week passes; the worker fires what falls due.
	PERFORM lifecycle_travel('7 days');
	COMMIT;
	CALL demo_wait();
END
\$\$;
EOF

base=$(( USERS * 3 / 5 ))
say "the application's existing user base: $base accounts, adopted with lifecycle_adopt()"
psql_demo -P footer=off <<EOF
-- Accounts from before the extension: half of them stale (last login
-- 100 days to three years ago), a third in use, the rest never confirmed.
INSERT INTO app_accounts (tenant, subject, k, kind, email, last_login, confirmed, plan, country)
SELECT CASE WHEN k % 3 = 0 THEN 'globex' ELSE 'acme' END, 'user' || k, k,
	   CASE WHEN k % 20 < 3 THEN 'ghost' WHEN k % 2 = 0 THEN 'churner'
			WHEN k % 10 < 5 THEN 'engaged' ELSE 'casual' END,
	   'user' || k || '@example.com',
	   CASE WHEN k % 20 < 3 THEN NULL
			WHEN k % 2 = 0 THEN lifecycle_now() - (100 + (k * 37) % 1000) * interval '1 day'
			ELSE lifecycle_now() - ((k * 13) % 60) * interval '1 day' END,
	   k % 20 >= 3, CASE WHEN k % 5 = 0 THEN 'pro' ELSE 'free' END,
	   CASE WHEN k % 2 = 0 THEN 'eu' ELSE 'us' END
  FROM generate_series(1, $base) k;
-- What lifecycle_adopt() reads: a view per tenant over the application's
-- table (subject, email, last_seen; region, attrs, registered optional).
CREATE VIEW acme_accounts AS
	SELECT subject, email, last_login AS last_seen, country AS region,
		   jsonb_build_object('plan', plan) AS attrs, confirmed AS registered
	  FROM app_accounts WHERE tenant = 'acme';
CREATE VIEW globex_accounts AS
	SELECT subject, email, last_login AS last_seen, country AS region,
		   jsonb_build_object('plan', plan) AS attrs, confirmed AS registered
	  FROM app_accounts WHERE tenant = 'globex';
SELECT 'acme' AS tenant, * FROM lifecycle_adopt('acme_accounts', 'acme', 'saas', spread => '14 days')
UNION ALL
SELECT 'globex', * FROM lifecycle_adopt('globex_accounts', 'globex', 'saas', spread => '14 days');
SELECT state, count(*) AS users,
	   count(*) FILTER (WHERE next_event = 'dormant'
						AND next_at <= lifecycle_now() + interval '14 days') AS notices_in_14_days
  FROM lifecycle.users GROUP BY state ORDER BY state;
EOF

# The DPO shortens the policy: the forecast of the current and of the
# proposed definition (printed by week and drawn with gnuplot), then
# lifecycle_define_policy() and lifecycle_migrate() of the running users.
proposed='{"dormant_after": "60 days", "archive_after": "14 days", "archive_reminders": ["7 days", "1 day"], "erase_after": "180 days"}'
shorten_policy() {
	echo
	say "week $week: lifecycle_forecast() of policy saas for the next 90 days, now and shortened"
	echo "proposed: $proposed"
	psql_demo -v def="$proposed" -v data="$work/forecast.dat" -P footer=off <<'SQL'
SELECT f.event, sum(f.users) FILTER (WHERE f.s = 'now') AS now,
	   sum(f.users) FILTER (WHERE f.s = 'proposed') AS shortened
  FROM (SELECT 'now' AS s, * FROM lifecycle_forecast('90 days', 'saas')
		UNION ALL
		SELECT 'proposed', * FROM lifecycle_forecast('90 days', 'saas', definition => :'def')) f
 GROUP BY f.event ORDER BY f.event;
\pset format unaligned
\pset fieldsep ' '
\pset tuples_only on
\o :data
WITH f AS (
	SELECT 'now' AS s, * FROM lifecycle_forecast('90 days', 'saas')
	UNION ALL
	SELECT 'proposed', * FROM lifecycle_forecast('90 days', 'saas', definition => :'def')),
w AS (SELECT (f.day - lifecycle_now()::date) / 7 AS w, f.* FROM f)
SELECT to_char(lifecycle_now()::date + g.w * 7, 'YYYY-MM-DD'),
	   coalesce(sum(w.users) FILTER (WHERE w.s = 'now' AND w.event = 'dormant'), 0),
	   coalesce(sum(w.users) FILTER (WHERE w.s = 'now' AND w.event = 'archive_due'), 0),
	   coalesce(sum(w.users) FILTER (WHERE w.s = 'now' AND w.event = 'erase_due'), 0),
	   coalesce(sum(w.users) FILTER (WHERE w.s = 'proposed' AND w.event = 'dormant'), 0),
	   coalesce(sum(w.users) FILTER (WHERE w.s = 'proposed' AND w.event = 'archive_due'), 0),
	   coalesce(sum(w.users) FILTER (WHERE w.s = 'proposed' AND w.event = 'erase_due'), 0)
  FROM generate_series(0, 12) g(w) LEFT JOIN w ON w.w = g.w
 GROUP BY g.w ORDER BY g.w;
\o
SQL
	echo "by week: archive notices (dormant), archived, erased; now | shortened"
	awk '{ printf "  %s  %6d %6d %6d | %6d %6d %6d\n", $1, $2, $3, $4, $5, $6, $7 }' "$work/forecast.dat"
	# The chart: per day, how many users the timers have reached so far.
	psql_demo -v def="$proposed" -v data="$work/forecast-daily.dat" -At -F ' ' <<'SQL'
\o :data
WITH f AS (
	SELECT 'now' AS s, * FROM lifecycle_forecast('90 days', 'saas')
	UNION ALL
	SELECT 'proposed', * FROM lifecycle_forecast('90 days', 'saas', definition => :'def')),
d AS (
	SELECT g.day::date AS day,
		   coalesce(sum(f.users) FILTER (WHERE f.s = 'now' AND f.event = 'dormant'), 0) AS n1,
		   coalesce(sum(f.users) FILTER (WHERE f.s = 'now' AND f.event = 'archive_due'), 0) AS n2,
		   coalesce(sum(f.users) FILTER (WHERE f.s = 'now' AND f.event = 'erase_due'), 0) AS n3,
		   coalesce(sum(f.users) FILTER (WHERE f.s = 'proposed' AND f.event = 'dormant'), 0) AS p1,
		   coalesce(sum(f.users) FILTER (WHERE f.s = 'proposed' AND f.event = 'archive_due'), 0) AS p2,
		   coalesce(sum(f.users) FILTER (WHERE f.s = 'proposed' AND f.event = 'erase_due'), 0) AS p3
	  FROM generate_series(lifecycle_now()::date, lifecycle_now()::date + 90, '1 day') g(day)
	  LEFT JOIN f ON f.day = g.day::date
	 GROUP BY g.day)
SELECT to_char(day, 'YYYY-MM-DD'),
	   sum(n1) OVER w, sum(n2) OVER w, sum(n3) OVER w,
	   sum(p1) OVER w, sum(p2) OVER w, sum(p3) OVER w
  FROM d WINDOW w AS (ORDER BY day) ORDER BY day;
\o
SQL
	gnuplot <<GP
set terminal pngcairo size 1100,650 font "DejaVu Sans,11"
set output "$forecast_png"
set title "lifecycle_forecast('90 days', 'saas') on $(head -n1 "$work/forecast-daily.dat" | cut -d' ' -f1): users reached so far, current policy (solid) and shortened (dashed)" noenhanced
set xdata time
set timefmt "%Y-%m-%d"
set format x "%d %b"
set xtics 7 * 86400
set xlabel "day (lifecycle clock)"
set ylabel "users, cumulative"
set yrange [0:*]
set grid xtics ytics
set key outside bottom center horizontal maxrows 2 width 2
set style data lines
plot "$work/forecast-daily.dat" using 1:2 title "archive notice (dormant), now" lw 2.5 lc rgb "#1f77b4", \
     "" using 1:3 title "archived, now" lw 2.5 lc rgb "#d62728", \
     "" using 1:4 title "erased, now" lw 2.5 lc rgb "#2ca02c", \
     "" using 1:5 title "archive notice, shortened" lw 2.5 dt 2 lc rgb "#1f77b4", \
     "" using 1:6 title "archived, shortened" lw 2.5 dt 2 lc rgb "#d62728", \
     "" using 1:7 title "erased, shortened" lw 2.5 dt 2 lc rgb "#2ca02c"
GP
	chmod 644 "$forecast_png"
	say "forecast chart: $forecast_png"
	say "lifecycle_define_policy() and lifecycle_migrate(): the shortened policy reaches the running users"
	psql_demo -v def="$proposed" -P footer=off <<'SQL'
-- The stored definition is complete (hooks resolved): change four keys.
SELECT lifecycle_define_policy('saas',
		(SELECT p.definition FROM lifecycle.policies p WHERE p.name = 'saas'
		  ORDER BY p.version DESC LIMIT 1) || :'def'::jsonb) AS new_version;
SELECT lifecycle_migrate('saas') AS users_moved;
SQL
	psql_demo -c "CALL demo_wait(120)"
}

# The scheduler started with the server, before the database existed; it
# retries every 5 s.  Wait for it (bounded) rather than for a timeout.
for _ in $(seq 200); do
	up=$(psql_demo -At -c "SELECT count(*) FROM lifecycle.worker_stats WHERE worker = 'scheduler' AND pid IS NOT NULL")
	[ "$up" = 1 ] && break
	sleep 0.05
done
[ "$up" = 1 ] || { echo "the scheduler worker did not start" >&2; exit 1; }

weekly=$(( (USERS - base) / WEEKS ))
first=$(( USERS - base - weekly * (WEEKS - 1) ))
say "$USERS users, $WEEKS weeks on the lifecycle clock, the real worker advancing them"
k=$((base + 1))
sim_start=$(date +%s.%N)
for week in $(seq 0 "$WEEKS"); do
	[ "$week" -eq "$MIGRATE_WEEK" ] && shorten_policy
	n=$weekly
	[ "$week" -eq 0 ] && n=$first
	[ "$week" -eq "$WEEKS" ] && n=0
	psql_demo -c "CALL demo_week($week, $n, $k)"
	k=$((k + n))
	line=$(psql_demo -At -F ' ' -c "
		SELECT to_char(lifecycle_now(), 'YYYY-MM-DD'),
			   count(*) FILTER (WHERE state = 'invited'),
			   count(*) FILTER (WHERE state = 'active'),
			   count(*) FILTER (WHERE state = 'dormant'),
			   count(*) FILTER (WHERE state = 'completed'),
			   count(*) FILTER (WHERE state = 'archived'),
			   count(*) FILTER (WHERE state = 'expired'),
			   count(*) FILTER (WHERE state = 'erased'),
			   (SELECT count(*) FROM lifecycle.history),
			   (SELECT count(*) FROM lifecycle.outbox),
			   (SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent')
		  FROM lifecycle.users")
	read -r day inv act dor com arc exp era hist msgs sent <<<"$line"
	printf '\r\033[Kweek %3d/%d %s  invited %4d active %4d dormant %4d completed %3d archived %4d expired %3d erased %4d | %5d transitions %5d messages (%5d sent)' \
		"$week" "$WEEKS" "$day" "$inv" "$act" "$dor" "$com" "$arc" "$exp" "$era" "$hist" "$msgs" "$sent"
done
sim_end=$(date +%s.%N)
echo

# Let the sender drain the outbox (bounded).
if [ -n "$sink_pid" ]; then
	for _ in $(seq 600); do
		pending=$(psql_demo -At -c "SELECT count(*) FROM lifecycle.outbox WHERE status = 'pending'")
		printf '\r\033[Kmessages still pending: %s' "$pending"
		[ "$pending" = 0 ] && break
		sleep 0.1
	done
	echo
fi

say "retention report (lifecycle.retention_report)"
psql_demo -P footer=off -c "SELECT tenant, policy, state, users, held,
		to_char(oldest_since, 'YYYY-MM-DD') AS oldest_since,
		to_char(next_due, 'YYYY-MM-DD HH24:MI') AS next_due
	FROM lifecycle.retention_report ORDER BY tenant, policy, state"
say "violations (lifecycle.violations: must be empty)"
psql_demo -c "SELECT tenant, subject, state, deadline_event, overdue_by FROM lifecycle.violations"
say "legal holds (lifecycle.holds)"
psql_demo -P footer=off -c "SELECT tenant, subject, state, reason, to_char(until, 'YYYY-MM-DD') AS until FROM lifecycle.holds"
say "erasure evidence (lifecycle.erasures)"
psql_demo -P footer=off -c "SELECT tenant, reason, state_before, requested_by, count(*)
	FROM lifecycle.erasures GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
say "messages (lifecycle.comms)"
if psql_demo -At -c "SELECT to_regclass('lifecycle.comms') IS NOT NULL" | grep -q t; then
	psql_demo -P footer=off -c "SELECT coalesce(channel, '(none)') AS channel, status, messages,
			to_char(last_sent_at, 'YYYY-MM-DD') AS last_sent, last_error
		FROM lifecycle.comms ORDER BY 1, 2"
else
	psql_demo -P footer=off -c "SELECT coalesce(channel, '(none)') AS channel, message, status, count(*)
		FROM lifecycle.outbox GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
fi
if [ -n "$sink_pid" ]; then
	python3 - "$work/sink.jsonl" <<'PY'
import collections, json, sys
n = valid = 0
types = collections.Counter()
try:
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            n += 1
            valid += bool(r.get("valid"))
            types[r.get("type")] += 1
except FileNotFoundError:
    pass
print("the webhook sink received %d requests, %d with a valid signature" % (n, valid))
for t, c in sorted(types.items(), key=lambda x: str(x[0])):
    print("  %-20s %6d" % (t, c))
PY
fi
say "workers (lifecycle.worker_stats)"
psql_demo -P footer=off -c "SELECT worker, pid, batches, transitions_total, failed_total, errors_total,
		coalesce(last_error, '') AS last_error FROM lifecycle.worker_stats"
say "a sample of lifecycle.metrics (what the Prometheus exporter publishes)"
psql_demo -P footer=off -c "SELECT name, labels, value FROM lifecycle.metrics
	WHERE name IN ('lifecycle_timers_overdue', 'lifecycle_timers_violations',
				   'lifecycle_worker_up', 'lifecycle_worker_transitions_total')
	   OR (name = 'lifecycle_state_users' AND labels->>'tenant' = 'acme')
	ORDER BY name, labels::text"
exporter=/usr/bin/prometheus-postgres-exporter
EXPORTER_PORT=${DEMO_EXPORTER_PORT:-7522}
if [ -x "$exporter" ] && ! listening "$EXPORTER_PORT"; then
	say "prometheus-postgres-exporter with contrib/prometheus-postgres-exporter/lifecycle-queries.yaml"
	runuser -u postgres -- env DATA_SOURCE_NAME="host=$work port=$PORT user=postgres dbname=demo sslmode=disable" \
		"$exporter" --extend.query-path="$work/src/contrib/prometheus-postgres-exporter/lifecycle-queries.yaml" \
		--web.listen-address="127.0.0.1:$EXPORTER_PORT" --disable-default-metrics \
		--disable-settings-metrics --log.level=warn >"$work/exporter.log" 2>&1 &
	exporter_pid=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$EXPORTER_PORT/metrics" -o "$work/metrics.txt" && break
		sleep 0.1
	done
	echo "curl http://127.0.0.1:$EXPORTER_PORT/metrics | grep '^lifecycle_' (some of them):"
	grep -E '^lifecycle_(state_users\{[^}]*tenant="acme"|transitions_total|timers_|dead_letters|outbox_messages\{[^}]*status="(unrouted|pending|sent|dead)"|worker_(up|transitions_total|errors_total))' \
		"$work/metrics.txt" | sed -E 's/,?server="[^"]*"//; s/\{,/{/; s/\{\}//' | head -n 40 || true
	kill "$exporter_pid" 2>/dev/null || true
	wait "$exporter_pid" 2>/dev/null || true
	exporter_pid=""
fi

say "the application's table agrees (hooks ran in the same transactions)"
psql_demo -P footer=off -c "SELECT count(*) FILTER (WHERE NOT a.archived AND u.state = 'archived') AS archived_not_flagged,
		count(*) FILTER (WHERE a.archived AND u.state <> 'archived') AS flagged_not_archived,
		(SELECT count(*) FROM lifecycle.users WHERE state = 'erased') AS erased_users,
		$((k - 1)) - (SELECT count(*) FROM app_accounts) AS app_rows_deleted
	FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)"

psql_demo -At -c "SELECT lifecycle_graph('saas')" > "$work/graph.dot"
dot -Tpng -o "$png" "$work/graph.dot"
chmod 644 "$png"
say "state graph of policy saas with live counts: $png"
[ -f "$forecast_png" ] && say "forecast of policy saas before it was shortened: $forecast_png"

worker_lines=$(grep -c "lifecycle" "$work/postgres.log" || true)
awk -v a="$sim_start" -v b="$sim_end" -v t="$(( $(date +%s) - started ))" -v l="$worker_lines" \
	'BEGIN { printf "simulation %.1f s, total %d s; %d lifecycle lines in the server log\n", b - a, t, l }'
