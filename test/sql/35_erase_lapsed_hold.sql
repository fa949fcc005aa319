-- Erase under a lapsed hold (DESIGN "Holds": a hold whose until has passed
-- counts as lapsed everywhere at once, whether or not the worker has
-- written its hold_lapse yet).  lifecycle_erase() of a subject whose hold
-- ended before the worker wrote its lapse is not refused: the lapse is
-- written first, as the worker writes it (due at the hold's end, by the
-- worker), then every instance is erased with its evidence as usual.  A
-- hold still in force refuses the erasure, as before.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Subject e1: the user lifecycle and a request, held for one day.
SELECT lifecycle_invite('e1', 'e1@example.com', 't35') > 0 AS invited;
SELECT lifecycle_start('dsar', 'e1', 't35', key => 'r1') > 0 AS started;
SELECT lifecycle_hold('e1', 't35', 'litigation', lifecycle_now() + interval '1 day');
SELECT workflow, key, held FROM lifecycle.users
 WHERE tenant = 't35' AND subject = 'e1' ORDER BY id;

-- In force: refused.
SELECT lifecycle_erase('e1', 't35', 'gdpr request');

-- Two days later, no tick: the hold has lapsed, its lapse not written.
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT workflow, key, held FROM lifecycle.users
 WHERE tenant = 't35' AND subject = 'e1' ORDER BY id;
SELECT (lifecycle_status('e1', 't35')).held AS status_held;
SELECT count(*) AS held_in_view FROM lifecycle.holds WHERE tenant = 't35';

-- The erasure proceeds.
SELECT lifecycle_erase('e1', 't35', 'gdpr request') > 0 AS erased;
SELECT count(*) AS live FROM lifecycle.users WHERE tenant = 't35' AND subject = 'e1';
SELECT u.workflow, u.key, u.state::text, u.held, u.email IS NULL AS no_email
  FROM lifecycle.users u WHERE u.tenant = 't35' ORDER BY u.id;
-- The history of each instance: the hold, its lapse (by the worker, due at
-- the hold's end), then the erasure.
SELECT u.workflow, h.event, h.actor = 'lifecycle worker' AS by_worker,
	   h.due_at = (SELECT (hh.detail ->> 'until')::timestamptz FROM lifecycle.history hh
				   WHERE hh.user_id = u.id AND hh.event = 'hold') AS due_at_hold_end
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't35' AND h.event IN ('hold', 'hold_lapse', 'erase')
 ORDER BY u.id, h.at, h.id;
-- One evidence row per instance.
SELECT count(*) AS evidence FROM lifecycle.erasures e JOIN lifecycle.users u ON u.id = e.user_id
 WHERE u.tenant = 't35';
