#!/usr/bin/env bash
# The lifecycle demo: a throwaway cluster, 10,000 users, two simulated years,
# and about a hundred data subject requests.
#
#   bash scripts/demo.sh          # as root (or it re-runs itself with sudo)
#
# Installs what is missing (scripts/deps.sh), builds and installs the
# extension from a temporary copy, starts a private cluster as the postgres
# OS user (Unix socket in a temporary directory, no TCP), and the local
# webhook and SMTP sinks of test/sinks/.  The application starts with an
# existing user base (60% of DEMO_USERS: stale accounts, active ones,
# never-confirmed sign-ups) in its own table, adopted with lifecycle_adopt()
# (one call per tenant, from a view; the stale accounts' notices spread
# over two weeks).  Then it invites newcomers, registers, touches,
# completes, restores and erases users for DEMO_WEEKS weeks of the
# lifecycle clock (once a week), while the real scheduler worker advances
# their timers.
#
# Data subject requests (the built-in dsar workflow, README "Data subject
# requests"): the DPO routes the dsar policy's e-mails to the SMTP sink;
# about 1% of DEMO_USERS (at least five) file a request through the run,
# each a ticket of the application's own table filed with
# lifecycle_start('dsar', subject, tenant, key => 'ticket-N', data =>
# '{"kind": ...}') in the ticket's transaction, and the application acts on
# its plan: most are answered in time (some before any reminder, some after
# the 7-day or the 1-day one), some extended first (lifecycle_signal(...,
# 'extend', ...)) and answered before the extended deadline, one refused,
# and one deliberately left unanswered: it goes overdue.
#
# The clock moves in 1-day steps (lifecycle_travel('1 day'), then the demo
# waits until lifecycle.overdue is empty), short enough that no reminder
# is ever skipped (dsar's last reminder is 1 day before the deadline),
# EXCEPT in one deliberate, announced outage: at week DEMO_OUTAGE_WEEK the
# workers are stopped (lifecycle.enabled = off) for 14 days while the
# application goes on; the unanswered request's reminders and deadline fall
# in it.  The demo shows lifecycle.violations and lifecycle.overdue while
# the worker is down, then the catch-up by the lateness principle: late
# timers fire at once, oldest first, a reminder reached at or after its
# deadline is skipped (reminder_skipped in history; their count is
# printed), the request becomes overdue as of its deadline.
#
# At week DEMO_MIGRATE_WEEK the DPO shortens the user policy: the demo
# prints lifecycle_forecast() of the current and the proposed definition,
# draws both as a chart (gnuplot), and moves the running users with
# lifecycle_migrate().  At the end it prints the retention report, the
# (empty) violations view, the requests (how many answered, extended,
# refused; the overdue one in lifecycle.instances, lifecycle.audit_trail
# and lifecycle.retention_report), the retention bounds of both workflows
# (lifecycle.retention_bounds), the delivery summary (webhooks and
# e-mails), the worker stats and a sample of lifecycle.metrics, renders
# lifecycle_graph() of both workflows' policies to PNGs, and checks (exit
# status 1 if one fails): no request but the deliberate one is overdue,
# violations and lifecycle.overdue are empty, no reminder was skipped
# outside the outage, every message is final (sent or cancelled; unrouted
# without sinks), every request e-mail reached the SMTP sink.  Everything
# but the PNGs is removed on exit.  It takes a few minutes on two cores.
#
# Environment: DEMO_USERS (10000), DEMO_WEEKS (104, at least 16: an
# extended request runs three months), DEMO_MIGRATE_WEEK (26),
# DEMO_OUTAGE_WEEK (DEMO_WEEKS / 2; its two weeks and the week after them
# must not hold the migration), DEMO_PORT (7520), DEMO_SINK_PORT (7521), DEMO_SMTP_PORT
# (7523), DEMO_EXPORTER_PORT (7522), DEMO_OUT (/tmp: where the PNGs go),
# DEMO_KEEP=1 keeps the cluster directory.  With PG_CONFIG set, the
# extension is built for and installed into that PostgreSQL 15 (whose
# bindir runs the cluster); DEMO_INSTALLED=1 skips the build (it is
# installed there already: scripts/test.sh's demo suite).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
src=$(pwd)

USERS=${DEMO_USERS:-10000}
WEEKS=${DEMO_WEEKS:-104}
MIGRATE_WEEK=${DEMO_MIGRATE_WEEK:-26}
PORT=${DEMO_PORT:-7520}
SINK_PORT=${DEMO_SINK_PORT:-7521}
SMTP_PORT=${DEMO_SMTP_PORT:-7523}
OUT=${DEMO_OUT:-/tmp}
# The outage: two weeks (the application's weekly rhythm) with the workers off.
OUTAGE_WEEK=${DEMO_OUTAGE_WEEK:-$(( WEEKS / 2 ))}
OUTAGE_WEEKS=2
started=$(date +%s)

if [ "$WEEKS" -lt 16 ]; then
	echo "DEMO_WEEKS must be at least 16: an extended request runs three months" >&2
	exit 2
fi
# The unanswered request is filed 20 days before the outage (its reminders
# and its deadline then fall in it), and the workers catch up before the end.
if [ "$OUTAGE_WEEK" -lt 3 ] || [ "$OUTAGE_WEEK" -gt $(( WEEKS - OUTAGE_WEEKS - 1 )) ] ||
	{ [ "$MIGRATE_WEEK" -ge "$OUTAGE_WEEK" ] && [ "$MIGRATE_WEEK" -le $(( OUTAGE_WEEK + OUTAGE_WEEKS )) ]; }; then
	echo "DEMO_OUTAGE_WEEK must be between 3 and $(( WEEKS - OUTAGE_WEEKS - 1 )), the migration (week $MIGRATE_WEEK) not in it nor the week after it" >&2
	exit 2
fi
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# Debian's Python runs the sinks (python3-aiosmtpd), whatever python3
# comes first in PATH.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# Does something accept connections on 127.0.0.1:$1?  (bash only, no ss)
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "dependencies (scripts/deps.sh)"
bash scripts/deps.sh
BIN=$("$PG_CONFIG" --bindir)

work=$(mktemp -d /tmp/lifecycle-demo.XXXXXX)
chmod 755 "$work"
mkdir -p "$OUT"
png=$OUT/lifecycle-demo-graph.png
dsar_png=$OUT/lifecycle-demo-graph-dsar.png
forecast_png=$OUT/lifecycle-demo-forecast.png
rm -f "$png" "$dsar_png" "$forecast_png"
sink_pid=""
smtp_pid=""
exporter_pid=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$exporter_pid" ] && kill -0 "$exporter_pid" 2>/dev/null; then
		kill "$exporter_pid" 2>/dev/null || true
		wait "$exporter_pid" 2>/dev/null || true
	fi
	for pid in "$sink_pid" "$smtp_pid"; do
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
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

if [ -n "${DEMO_INSTALLED:-}" ]; then
	say "the extension as installed for $PG_CONFIG"
else
	say "build and install (in $work/src, for $PG_CONFIG)"
	rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
		--exclude 'tmp_check*' --exclude results ./ "$work/src/"
	make -C "$work/src" -s -j2 PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$work/src" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
fi

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
		"$PY" "$sink" --port "$SINK_PORT" --secret "$secret" \
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

# The local SMTP sink (test/sinks/smtp_sink.py, python3-aiosmtpd): the
# data subject requests' e-mails.  Without it they go to the webhook sink.
mail_channel=$channel
if [ -f test/sinks/smtp_sink.py ]; then
	if listening "$SMTP_PORT"; then
		echo "port $SMTP_PORT is taken: request e-mails go to the webhook sink"
	else
		"$PY" test/sinks/smtp_sink.py --dir "$work/mail" --port "$SMTP_PORT" \
			>"$work/smtp.log" 2>&1 &
		smtp_pid=$!
		for _ in $(seq 50); do
			listening "$SMTP_PORT" && break
			kill -0 "$smtp_pid" 2>/dev/null || break
			sleep 0.1
		done
		if listening "$SMTP_PORT"; then
			say "SMTP sink test/sinks/smtp_sink.py on 127.0.0.1:$SMTP_PORT"
			mail_channel='"mail"'
		else
			echo "the SMTP sink did not start (see below): request e-mails go to the webhook sink"
			tail -n 5 "$work/smtp.log" || true
			smtp_pid=""
		fi
	fi
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
$( [ "$mail_channel" = '"mail"' ] && echo "SELECT lifecycle_add_channel('mail', 'smtp', 'smtp://127.0.0.1:$SMTP_PORT', NULL, '{\"from\": \"dpo@example.com\", \"starttls\": false}');" )
\o
SELECT lifecycle_define_policy('saas', '{
	"dormant_after": "90 days", "archive_after": "30 days",
	"erase_after": "365 days", "channel": $channel,
	"hooks": {"archive": "app_archive", "restore": "app_restore",
			  "erase": "app_erase"}}') AS policy_version \gset
-- The DPO's version of the built-in dsar workflow's policy: its defaults
-- (answer within 1 mon of receipt, one extension by 2 mons, reminders 7
-- days and 1 day before the deadline, closed requests kept 2 years), the
-- e-mails to the subject by SMTP.  lifecycle_start('dsar', ...) uses it.
SELECT lifecycle_define_policy('dsar', '{"workflow": "dsar", "channel": $mail_channel}') AS dsar_policy_version \gset
-- The application's own tickets of data subject requests; the key of
-- each request is 'ticket-' || ticket.  plan drives the simulation:
-- answer (answer_before the deadline), extend (act_after the receipt,
-- then answer answer_before the extended deadline), refuse (act_after
-- the receipt), ignore (the one left unanswered).
CREATE TABLE app_requests (
	ticket int PRIMARY KEY, kind text NOT NULL, filed_day int NOT NULL,
	plan text NOT NULL, act_after interval, answer_before interval,
	tenant text, subject text, instance bigint, filed_at timestamptz,
	status text, closed_at timestamptz);
-- When the workers' outage and the policy migration happened, on the
-- lifecycle clock: the only two times a reminder may be skipped.
CREATE TABLE demo_gaps (what text PRIMARY KEY, started timestamptz, ended timestamptz);
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
-- One day of the application's data subject requests: the tickets filed
-- today (each a user with a live account and no request yet; the ticket
-- and the request in one transaction), then the tickets acted on by plan
-- (the ticket's status is the request's new state).
CREATE PROCEDURE demo_requests(day int) LANGUAGE plpgsql AS \$\$
DECLARE
	t record;
	s record;
BEGIN
	FOR t IN SELECT r.* FROM app_requests r WHERE r.filed_day = day ORDER BY r.ticket LOOP
		SELECT a.tenant, a.subject INTO s
		  FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject)
		 WHERE u.workflow = 'user' AND NOT u.held
		   AND u.state IN ('active', 'dormant', 'completed', 'archived')
		   AND NOT EXISTS (SELECT 1 FROM app_requests o
							WHERE o.tenant = a.tenant AND o.subject = a.subject)
		 ORDER BY (a.k::bigint * 7919 + t.ticket * 104729) % 10007, a.k LIMIT 1;
		CONTINUE WHEN NOT FOUND;
		UPDATE app_requests r
		   SET tenant = s.tenant, subject = s.subject, filed_at = lifecycle_now(),
			   status = 'received',
			   instance = lifecycle_start('dsar', s.subject, s.tenant,
										  key => 'ticket-' || t.ticket,
										  data => jsonb_build_object('kind', t.kind))
		 WHERE r.ticket = t.ticket;
		COMMIT;
	END LOOP;
	UPDATE app_requests r
	   SET status = lifecycle_signal('dsar', r.subject, 'extend', r.tenant, 'ticket-' || r.ticket)
	 WHERE r.plan = 'extend' AND r.status = 'received'
	   AND lifecycle_now() >= r.filed_at + r.act_after;
	UPDATE app_requests r
	   SET status = lifecycle_signal('dsar', r.subject, 'refuse', r.tenant, 'ticket-' || r.ticket),
		   closed_at = lifecycle_now()
	 WHERE r.plan = 'refuse' AND r.status = 'received'
	   AND lifecycle_now() >= r.filed_at + r.act_after;
	UPDATE app_requests r
	   SET status = lifecycle_signal('dsar', r.subject, 'answer', r.tenant, 'ticket-' || r.ticket),
		   closed_at = lifecycle_now()
	  FROM lifecycle.users i
	 WHERE r.plan IN ('answer', 'extend')
	   AND r.status = CASE r.plan WHEN 'answer' THEN 'received' ELSE 'extended' END
	   AND i.id = r.instance
	   AND lifecycle_now() >= i.deadline_at - r.answer_before;
	COMMIT;
END
\$\$;
-- One week of the application: invitations, registrations, activity,
-- completions, returning users, an erasure request, legal holds; then its
-- days with their requests.
CREATE PROCEDURE demo_week(week int, invites int, first_k int, worker_up boolean = true)
LANGUAGE plpgsql AS \$\$
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
				   AND NOT EXISTS (SELECT 1 FROM app_requests r
									WHERE r.tenant = a.tenant AND r.subject = a.subject)
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
				   AND NOT EXISTS (SELECT 1 FROM app_requests r
									WHERE r.tenant = a.tenant AND r.subject = a.subject)
				 ORDER BY a.k LIMIT 5) a;
	END IF;
	COMMIT;
	-- The week passes a day at a time (so that no reminder is skipped:
	-- dsar's last one is a day before the deadline): each day the
	-- application files and acts on requests, then the worker fires what
	-- falls due (unless it is down).
	FOR d IN 0..6 LOOP
		CALL demo_requests(week * 7 + d);
		PERFORM lifecycle_travel('1 day');
		COMMIT;
		IF worker_up THEN
			CALL demo_wait();
		END IF;
	END LOOP;
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
INSERT INTO demo_gaps VALUES ('migration', lifecycle_now(), NULL);
SELECT lifecycle_migrate('saas') AS users_moved;
SQL
	psql_demo -c "CALL demo_wait(120)" -c "UPDATE demo_gaps SET ended = lifecycle_now() WHERE what = 'migration'"
	echo "dormant users whose shortened archive deadline has already passed are archived at once, their"
	echo "reminders skipped (reminder_skipped in history, no message; the lateness principle):"
	psql_demo -P footer=off -c "SELECT h.event, count(*)
		FROM lifecycle.history h, demo_gaps g
		WHERE g.what = 'migration' AND h.at >= g.started AND h.at <= g.ended
		  AND h.event IN ('reminder_skipped', 'archive_due') GROUP BY 1 ORDER BY 1"
}

# The scheduler started with the server, before the database existed; it
# retries every 5 s.  Wait for it (bounded) rather than for a timeout.
for _ in $(seq 200); do
	up=$(psql_demo -At -c "SELECT count(*) FROM lifecycle.worker_stats WHERE worker = 'scheduler' AND pid IS NOT NULL")
	[ "$up" = 1 ] && break
	sleep 0.05
done
[ "$up" = 1 ] || { echo "the scheduler worker did not start" >&2; exit 1; }

# The data subject requests of the run: about 1% of DEMO_USERS (at least
# five), filed over the run until 100 days before its end (an extended
# request runs three months), with their plans; one of them refused.
# And one more, filed 20 days before the outage and never answered: its
# two reminders and its deadline fall in the outage.
nreq=$(( USERS / 100 ))
[ "$nreq" -ge 5 ] || nreq=5
window=$(( WEEKS * 7 - 100 ))
outage_day=$(( OUTAGE_WEEK * 7 ))
psql_demo <<EOF
INSERT INTO app_requests (ticket, kind, filed_day, plan, act_after, answer_before)
SELECT 1001 + i,
	   (ARRAY['access', 'erasure', 'rectification', 'portability', 'objection'])[1 + i % 5],
	   1 + i * ($window - 1) / $nreq,
	   CASE WHEN i = $nreq / 2 THEN 'refuse' WHEN i % 3 = 1 THEN 'extend' ELSE 'answer' END,
	   CASE WHEN i = $nreq / 2 THEN interval '12 days'
			WHEN i % 3 = 1 THEN (7 + i * 5 % 14) * interval '1 day' END,
	   (ARRAY[interval '1 day', '3 days', '10 days', '25 days'])[1 + i / 2 % 4]
  FROM generate_series(0, $nreq - 1) i;
INSERT INTO app_requests (ticket, kind, filed_day, plan)
VALUES (1001 + $nreq, 'access', $outage_day - 20, 'ignore');
EOF

# The workers off (lifecycle.enabled) and on again: ALTER SYSTEM and a
# reload; wait until both have taken the SIGHUP.
workers_enabled() {
	local before
	before=$(psql_demo -At -c "SELECT max(last_wake) FROM lifecycle.worker_stats")
	psql_demo -c "ALTER SYSTEM $1" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 200); do
		[ "$(psql_demo -At -c "SELECT count(*) = 2 FROM lifecycle.worker_stats
			WHERE worker IN ('scheduler', 'sender') AND last_wake > '$before'")" = t ] && break
		sleep 0.05
	done
	sleep 0.2
}

# What the views show at the end of the outage (before the workers come
# back): the deadlines passed unrecorded, the timers not fired.
outage_views() {
	echo
	say "day $(( outage_day + 7 * OUTAGE_WEEKS )), the workers still down: what the views show"
	echo "lifecycle.violations: every instance whose retention or answer deadline passed more than a minute"
	echo "ago without the database recording the step it owed (the worker is down), per workflow:"
	psql_demo -P footer=off -c "SELECT workflow, count(*) AS instances, date_trunc('hour', max(overdue_by)) AS most_late
		FROM lifecycle.violations GROUP BY workflow ORDER BY workflow"
	echo "the requests among them: the one left unanswered, past its answer deadline (deadline_event respond)"
	echo "and still 'received': a breach of Art. 12(3) the database has not recorded yet:"
	psql_demo -P footer=off -c "SELECT v.id, v.tenant, i.key, v.state, v.deadline_event,
			to_char(v.deadline_at, 'YYYY-MM-DD HH24:MI') AS deadline_at, date_trunc('hour', v.overdue_by) AS overdue_by,
			v.next_event, to_char(v.next_at, 'YYYY-MM-DD HH24:MI') AS next_at
		FROM lifecycle.violations v JOIN lifecycle.instances i USING (id)
		WHERE v.workflow = 'dsar' ORDER BY v.deadline_at"
	echo "lifecycle.overdue: every timer due but not fired, reminders included (per workflow and event):"
	psql_demo -P footer=off -c "SELECT workflow, next_event, count(*) AS timers, date_trunc('hour', max(overdue_by)) AS most_late
		FROM lifecycle.overdue GROUP BY 1, 2 ORDER BY 1, 2"
	echo "its requests (a reminder due is the next timer of a request; the deadline comes after it):"
	psql_demo -P footer=off -c "SELECT o.id, o.tenant, i.key, o.state, o.next_event,
			to_char(o.due_at, 'YYYY-MM-DD HH24:MI') AS due_at, date_trunc('hour', o.overdue_by) AS overdue_by,
			to_char(i.deadline_at, 'YYYY-MM-DD HH24:MI') AS deadline_at
		FROM lifecycle.overdue o JOIN lifecycle.instances i USING (id)
		WHERE o.workflow = 'dsar' ORDER BY o.due_at"
}

weekly=$(( (USERS - base) / WEEKS ))
first=$(( USERS - base - weekly * (WEEKS - 1) ))
say "$USERS users and $((nreq + 1)) data subject requests, $WEEKS weeks on the lifecycle clock in 1-day steps, the real worker advancing them"
k=$((base + 1))
sim_start=$(date +%s.%N)
for week in $(seq 0 "$WEEKS"); do
	[ "$week" -eq "$MIGRATE_WEEK" ] && shorten_policy
	worker_up=true
	if [ "$week" -ge "$OUTAGE_WEEK" ] && [ "$week" -lt $(( OUTAGE_WEEK + OUTAGE_WEEKS )) ]; then
		worker_up=false
	fi
	if [ "$week" -eq "$OUTAGE_WEEK" ]; then
		echo
		say "day $outage_day: worker down for $(( 7 * OUTAGE_WEEKS )) days (lifecycle.enabled = off; the application goes on)"
		workers_enabled "SET lifecycle.enabled = off"
		psql_demo -c "INSERT INTO demo_gaps VALUES ('outage', lifecycle_now(), NULL)"
	fi
	n=$weekly
	[ "$week" -eq 0 ] && n=$first
	[ "$week" -eq "$WEEKS" ] && n=0
	psql_demo -c "CALL demo_week($week, $n, $k, $worker_up)"
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
			   (SELECT count(*) FROM lifecycle.users
				 WHERE workflow = 'dsar' AND state IN ('received', 'extended')),
			   (SELECT count(*) FROM lifecycle.users
				 WHERE workflow = 'dsar' AND state NOT IN ('received', 'extended')),
			   (SELECT count(*) FROM lifecycle.history),
			   (SELECT count(*) FROM lifecycle.outbox),
			   (SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent')
		  FROM lifecycle.users WHERE workflow = 'user'")
	read -r day inv act dor com arc exp era ropen rclosed hist msgs sent <<<"$line"
	printf '\r\033[Kweek %3d/%d %s  invited %4d active %4d dormant %4d completed %3d archived %4d expired %3d erased %4d | requests %3d open %3d closed | %5d transitions %5d messages (%5d sent)' \
		"$week" "$WEEKS" "$day" "$inv" "$act" "$dor" "$com" "$arc" "$exp" "$era" "$ropen" "$rclosed" "$hist" "$msgs" "$sent"
	if [ "$week" -eq $(( OUTAGE_WEEK + OUTAGE_WEEKS - 1 )) ]; then
		outage_views
		psql_demo -c "UPDATE demo_gaps SET ended = lifecycle_now() WHERE what = 'outage'"
		catchup_start=$(date +%s.%N)
		workers_enabled "RESET lifecycle.enabled"
		psql_demo -c "CALL demo_wait(300)"
		catchup_end=$(date +%s.%N)
		say "the workers are back: caught up with $(( 7 * OUTAGE_WEEKS )) days in $(awk -v a="$catchup_start" -v b="$catchup_end" 'BEGIN { printf "%.1f", b - a }') s"
		echo "in the catch-up, a reminder reached before its deadline is sent late; one reached at or after"
		echo "its deadline is skipped (reminder_skipped in history, no message), per workflow:"
		psql_demo -P footer=off -c "SELECT u.workflow, count(*) AS reminders_skipped
			FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id, demo_gaps g
			WHERE h.event = 'reminder_skipped' AND g.what = 'outage' AND h.at >= g.ended
			GROUP BY u.workflow ORDER BY u.workflow"
		echo "the unanswered request's history (lifecycle.audit_trail): its reminders skipped, then overdue as of"
		echo "its deadline (due_at), recorded late (at); its record is kept two years from the deadline:"
		psql_demo -P footer=off -c "SELECT a.event, a.from_state, a.to_state,
				to_char(a.due_at, 'YYYY-MM-DD HH24:MI') AS due_at, to_char(a.at, 'YYYY-MM-DD HH24:MI') AS at
			FROM lifecycle.audit_trail a JOIN app_requests r ON r.instance = a.user_id
			WHERE r.plan = 'ignore' ORDER BY a.at, a.id"
	fi
done
sim_end=$(date +%s.%N)
echo

# Let the sender drain the outbox (bounded).
if [ -n "$sink_pid$smtp_pid" ]; then
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
		to_char(next_due, 'YYYY-MM-DD HH24:MI') AS next_due,
		to_char(next_deadline, 'YYYY-MM-DD') AS next_deadline, violations, workflow
	FROM lifecycle.retention_report ORDER BY tenant, workflow DESC, policy, state"
say "violations (lifecycle.violations: must be empty)"
psql_demo -c "SELECT tenant, subject, state, deadline_event, overdue_by, workflow FROM lifecycle.violations"
say "legal holds (lifecycle.holds)"
psql_demo -P footer=off -c "SELECT tenant, subject, state, reason, to_char(until, 'YYYY-MM-DD') AS until FROM lifecycle.holds"
say "erasure evidence (lifecycle.erasures)"
psql_demo -P footer=off -c "SELECT tenant, reason, state_before, requested_by, count(*)
	FROM lifecycle.erasures GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
say "messages (lifecycle.comms)"
if psql_demo -At -c "SELECT to_regclass('lifecycle.comms') IS NOT NULL" | grep -q t; then
	psql_demo -P footer=off -c "SELECT coalesce(channel, '(none)') AS channel, kind, workflow, status, messages,
			to_char(last_sent_at, 'YYYY-MM-DD') AS last_sent, last_error
		FROM lifecycle.comms ORDER BY 1, workflow DESC, status"
else
	psql_demo -P footer=off -c "SELECT coalesce(channel, '(none)') AS channel, message, status, count(*)
		FROM lifecycle.outbox GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
fi
if [ -n "$sink_pid" ]; then
	"$PY" - "$work/sink.jsonl" >"$work/webhooks.txt" <<'PY'
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
	cat "$work/webhooks.txt"
fi
if [ -n "$smtp_pid" ]; then
	"$PY" - "$work/mail" >"$work/mails.txt" <<'PY'
import collections, email, email.policy, glob, os, sys
kinds = collections.Counter()
sample = None
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.eml"))):
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    kinds[m.get("X-Lifecycle-Message", "?")] += 1
    if sample is None and m.get("X-Lifecycle-Message") == "request_extended":
        sample = m
print("the SMTP sink received %d e-mails" % sum(kinds.values()))
for t, c in sorted(kinds.items()):
    print("  %-20s %6d" % (t, c))
if sample is not None:
    print("one of them (request_extended):")
    for h in ("To", "Subject", "X-Lifecycle-Message"):
        print("  %s: %s" % (h, sample.get(h)))
    body = sample.get_body(preferencelist=("plain",))
    for line in (body.get_content() if body else "").strip().splitlines():
        print("  | " + line)
PY
	cat "$work/mails.txt"
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
	install -m 644 contrib/prometheus-postgres-exporter/lifecycle-queries.yaml "$work/"
	runuser -u postgres -- env DATA_SOURCE_NAME="host=$work port=$PORT user=postgres dbname=demo sslmode=disable" \
		"$exporter" --extend.query-path="$work/lifecycle-queries.yaml" \
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
		(SELECT count(*) FROM lifecycle.users WHERE workflow = 'user' AND state = 'erased') AS erased_users,
		$((k - 1)) - (SELECT count(*) FROM app_accounts) AS app_rows_deleted
	FROM app_accounts a JOIN lifecycle.users u USING (tenant, subject) WHERE u.workflow = 'user'"

# The data subject requests: what became of each (from history, which
# outlives an erased request), by kind.
psql_demo <<'SQL'
CREATE VIEW demo_request_outcomes AS
SELECT r.ticket, r.kind, r.plan, i.id, i.state,
	   bool_or(h.event = 'extend') AS extended,
	   bool_or(h.event = 'answer') AS answered,
	   bool_or(h.event = 'refuse') AS refused,
	   bool_or(h.event = 'respond_due') AS missed,
	   count(*) FILTER (WHERE h.event = 'respond_reminder') AS reminders,
	   count(*) FILTER (WHERE h.event = 'reminder_skipped') AS skipped
  FROM app_requests r
  JOIN lifecycle.users i ON i.id = r.instance
  JOIN lifecycle.history h ON h.user_id = i.id
 GROUP BY r.ticket, r.kind, r.plan, i.id, i.state;
SQL
say "data subject requests (the application's tickets and each request's history)"
psql_demo -P footer=off -c "SELECT coalesce(kind, 'all') AS kind, count(*) AS filed,
		count(*) FILTER (WHERE answered AND NOT extended AND NOT missed) AS answered,
		count(*) FILTER (WHERE answered AND extended AND NOT missed) AS extended_answered,
		count(*) FILTER (WHERE refused) AS refused,
		count(*) FILTER (WHERE missed) AS overdue,
		count(*) FILTER (WHERE state IN ('received', 'extended')) AS open,
		count(*) FILTER (WHERE state = 'erased') AS erased,
		sum(reminders) AS reminders_sent, sum(skipped) AS reminders_skipped
	FROM demo_request_outcomes GROUP BY ROLLUP (kind) ORDER BY GROUPING(kind), 1"
psql_demo -At -c "SELECT format('requests: %s filed, %s answered in time, %s extended then answered, %s refused, %s overdue (ticket-%s, left unanswered on purpose), %s still open',
		count(*), count(*) FILTER (WHERE answered AND NOT extended AND NOT missed),
		count(*) FILTER (WHERE answered AND extended AND NOT missed),
		count(*) FILTER (WHERE refused), count(*) FILTER (WHERE missed),
		min(ticket) FILTER (WHERE plan = 'ignore'),
		count(*) FILTER (WHERE state IN ('received', 'extended')))
	FROM demo_request_outcomes"

say "the request left unanswered, as the views show it now"
echo "lifecycle.instances (for auditors, no personal data): the request is 'overdue', the record of a missed"
echo "Art. 12(3) deadline; its deadline_event is now 'close': the record is kept two years from the missed"
echo "deadline, then erased:"
psql_demo -P footer=off -c "SELECT id, tenant, workflow, key, state,
		to_char(state_since, 'YYYY-MM-DD HH24:MI') AS state_since, deadline_event,
		to_char(deadline_at, 'YYYY-MM-DD HH24:MI') AS deadline_at
	FROM lifecycle.instances WHERE workflow = 'dsar' AND state = 'overdue' ORDER BY id"
echo "lifecycle.audit_trail: when its deadline was (due_at) and when the late worker recorded it (at):"
psql_demo -P footer=off -c "SELECT i.tenant, i.id, i.key, to_char(a.due_at, 'YYYY-MM-DD HH24:MI') AS deadline,
		to_char(a.at, 'YYYY-MM-DD HH24:MI') AS recorded
	FROM lifecycle.instances i JOIN lifecycle.audit_trail a ON a.user_id = i.id
	WHERE i.workflow = 'dsar' AND a.event = 'respond_due' ORDER BY a.due_at"
echo "lifecycle.retention_report, workflow dsar: the overdue request is the group 'overdue', kept until"
echo "its next_deadline (two years from the missed deadline); violations 0: nothing is kept past a deadline:"
psql_demo -P footer=off -c "SELECT tenant, policy, state, users,
		to_char(next_deadline, 'YYYY-MM-DD') AS next_deadline, violations
	FROM lifecycle.retention_report WHERE workflow = 'dsar' ORDER BY tenant, state"
echo "lifecycle.violations and lifecycle.overdue list it no more: the breach is recorded, no timer is late:"
psql_demo -P footer=off -c "SELECT (SELECT count(*) FROM lifecycle.violations WHERE workflow = 'dsar') AS dsar_violations,
		(SELECT count(*) FROM lifecycle.overdue WHERE workflow = 'dsar') AS dsar_timers_overdue"

say "retention bounds of the policies in force (lifecycle.retention_bounds): the longest an instance"
say "can still exist after entering each state if nobody acts again"
psql_demo -P footer=off -c "SELECT b.workflow, b.policy, b.policy_version AS version, b.state, b.bound,
		array_to_string(b.path, ' > ') AS longest_path
	FROM lifecycle.retention_bounds b
	WHERE (b.policy, b.policy_version) IN (SELECT p.name, max(p.version) FROM lifecycle.policies p
											WHERE p.name IN ('saas', 'dsar') GROUP BY p.name)
	ORDER BY b.workflow DESC, b.bound DESC, b.state"

psql_demo -At -c "SELECT lifecycle_graph('saas')" > "$work/graph.dot"
dot -Tpng -o "$png" "$work/graph.dot"
psql_demo -At -c "SELECT lifecycle_graph('dsar')" > "$work/graph-dsar.dot"
dot -Tpng -o "$dsar_png" "$work/graph-dsar.dot"
chmod 644 "$png" "$dsar_png"

say "checks"
failed=0
passed=0
check() {
	local r
	r=$(psql_demo -At -c "$2" 2>&1 || true)
	if [ "$r" = t ]; then
		passed=$((passed + 1))
		echo "ok: $1"
	else
		failed=$((failed + 1))
		echo "FAILED: $1 (got: $r)"
	fi
}
check "every ticket was filed as a request" \
	"SELECT count(*) = 0 FROM app_requests WHERE instance IS NULL"
check "every request ended as the application meant it to (answered, extended then answered, refused)" \
	"SELECT bool_and(CASE plan
			WHEN 'answer' THEN answered AND NOT extended AND NOT refused AND NOT missed
			WHEN 'extend' THEN answered AND extended AND NOT refused AND NOT missed
			WHEN 'refuse' THEN refused AND NOT answered AND NOT missed
			ELSE true END) FROM demo_request_outcomes"
check "no request but the one left unanswered is overdue, and that one is" \
	"SELECT count(*) FILTER (WHERE missed OR state = 'overdue') = 1
		AND bool_and((plan = 'ignore') = (missed AND state = 'overdue' AND NOT answered AND NOT refused))
	FROM demo_request_outcomes"
check "the unanswered request's two reminders fell in the outage and were skipped" \
	"SELECT reminders = 0 AND skipped = 2 FROM demo_request_outcomes WHERE plan = 'ignore'"
check "no reminder skipped but in the outage's catch-up and at the migration (the 1-day steps reach every reminder before its deadline)" \
	"SELECT count(*) = 0 FROM lifecycle.history h
		LEFT JOIN demo_gaps o ON o.what = 'outage'
		LEFT JOIN demo_gaps m ON m.what = 'migration'
	WHERE h.event = 'reminder_skipped'
	  AND NOT coalesce(h.due_at >= o.started AND h.due_at <= o.ended AND h.at >= o.ended
					   AND h.at < o.ended + interval '1 day', false)
	  AND NOT coalesce(h.due_at <= m.started AND h.at >= m.started AND h.at <= m.ended, false)"
check "lifecycle.violations is empty (the workers caught up)" \
	"SELECT count(*) = 0 FROM lifecycle.violations"
check "lifecycle.overdue is empty" \
	"SELECT count(*) = 0 FROM lifecycle.overdue"
if [ "$channel" != null ] && [ "$mail_channel" != null ]; then
	check "every message is final: sent or cancelled" \
		"SELECT count(*) = 0 FROM lifecycle.outbox WHERE status NOT IN ('sent', 'cancelled') OR claimed_at IS NOT NULL"
else
	check "every message is final: sent, cancelled or unrouted (no sink)" \
		"SELECT count(*) = 0 FROM lifecycle.outbox
		WHERE status NOT IN ('sent', 'cancelled', 'unrouted') OR claimed_at IS NOT NULL"
fi
# Every request message written (one per history row of these events,
# history outlives the outbox's retention) arrived at its sink, once.
written=$(psql_demo -At -F ' ' -c "SELECT m, count(*) FROM (
		SELECT CASE h.event WHEN 'request' THEN 'request_received'
				WHEN 'respond_reminder' THEN 'request_reminder' WHEN 'extend' THEN 'request_extended'
				WHEN 'answer' THEN 'request_answered' WHEN 'refuse' THEN 'request_refused'
				WHEN 'respond_due' THEN 'request_overdue' END AS m
		  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
		 WHERE u.workflow = 'dsar') x WHERE m IS NOT NULL GROUP BY m" | LC_ALL=C sort)
arrived=""
if [ "$mail_channel" = '"mail"' ]; then
	arrived=$(awk '$1 ~ /^request_/ && NF == 2 { print $1, $2 }' "$work/mails.txt" | LC_ALL=C sort)
	sink_name="the SMTP sink"
elif [ "$mail_channel" != null ]; then
	arrived=$(awk '$1 ~ /^request_/ && NF == 2 { print $1, $2 }' "$work/webhooks.txt" | LC_ALL=C sort)
	sink_name="the webhook sink"
fi
if [ "$mail_channel" != null ]; then
	if [ "$written" = "$arrived" ]; then
		passed=$((passed + 1))
		echo "ok: every request message written reached $sink_name once ($(echo "$written" | awk '{ n += $2 } END { print n }') messages)"
	else
		failed=$((failed + 1))
		echo "FAILED: request messages written and received by $sink_name differ:"
		diff <(echo "$written") <(echo "$arrived") || true
	fi
fi
echo "demo checks: $passed passed, $failed failed"

say "pictures"
echo "  $png: the user lifecycle's graph (policy saas) with live counts"
echo "  $dsar_png: the dsar workflow's graph (policy dsar) with live counts"
[ -f "$forecast_png" ] && echo "  $forecast_png: the forecast of policy saas before it was shortened"

worker_lines=$(grep -c "lifecycle" "$work/postgres.log" || true)
awk -v a="$sim_start" -v b="$sim_end" -v t="$(( $(date +%s) - started ))" -v l="$worker_lines" \
	'BEGIN { printf "simulation %.1f s, total %d s; %d lifecycle lines in the server log\n", b - a, t, l }'
[ "$failed" -eq 0 ] || exit 1
