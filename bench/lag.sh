#!/usr/bin/env bash
# Timer lag with an idle worker: 2,000 timers falling due spread over 20 s.
# A policy "lagbench" makes users dormant 5 seconds after last_seen; a
# procedure registers the 2,000 invited users one per transaction, 10 ms
# apart (20 s), so each registration commits a new timer (due 5 s later)
# the way an application would, and the commit wakes the worker.  Lag per
# timer = history.at - history.due_at of its dormant transition (at = the
# lifecycle time the worker's batch transaction started).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${LAG_TIMERS:-2000}
SPREAD=${LAG_SECONDS:-20}

set_worker lifecycle.batch_size 10000
qf <<SQL >/dev/null
SET client_min_messages = warning;
SELECT lifecycle_define_policy('lagbench', '{"dormant_after": "5 seconds",
	"touch_granularity": "1 second", "invite_reminders": []}');
SELECT count(lifecycle_invite('lag-' || i, 'lag' || i || '@example.com', 'bench-lag', 'lagbench'))
  FROM generate_series(1, $N) i;
CREATE OR REPLACE PROCEDURE bench_register(n int, pause float8)
LANGUAGE plpgsql AS \$\$
BEGIN
	FOR i IN 1 .. n LOOP
		PERFORM lifecycle_register('lag-' || i, 'bench-lag');
		COMMIT;
		PERFORM pg_sleep(pause);
	END LOOP;
END \$\$;
SQL
q "CHECKPOINT" >/dev/null
pause=$(awk -v s="$SPREAD" -v n="$N" 'BEGIN { printf "%.6f", s / n }')
q "CALL bench_register($N, $pause)" >/dev/null
wait_for "NOT EXISTS (SELECT 1 FROM lifecycle.users WHERE tenant = 'bench-lag' AND state = 'active')" 120
read -r cnt p50 p99 mx span < <(q "
SELECT count(*),
	round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY h.at - h.due_at)) * 1000, 1),
	round(extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY h.at - h.due_at)) * 1000, 1),
	round(extract(epoch FROM max(h.at - h.due_at)) * 1000, 1),
	round(extract(epoch FROM max(h.due_at) - min(h.due_at)), 1)
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 'bench-lag' AND h.event = 'dormant'" | tr '|' ' ')
report "timer lag: $cnt timers due over ${span}s: p50 ${p50} ms, p99 ${p99} ms, max ${mx} ms (fired - due)"
