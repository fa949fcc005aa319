-- Legal holds: while held no timer fires, application events still work,
-- erasure is refused; on release overdue timers fire at once; a hold with
-- "until" lapses by itself on the lifecycle clock.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT lifecycle_invite(s, s || '@example.com', 't30') > 0 AS invited
  FROM unnest(ARRAY['h1', 'h3']) s ORDER BY s;
SELECT lifecycle_register(s, 't30') FROM unnest(ARRAY['h1', 'h3']) s ORDER BY s;
SELECT lifecycle_complete('h3', 't30');

-- Placing a hold writes a history row (same state) and stops the timers.
SELECT lifecycle_hold('h1', 't30', 'litigation 17');
SELECT lifecycle_hold('h3', 't30', 'audit');
SELECT subject, state, held, hold_reason, hold_until, next_at, next_event
  FROM lifecycle.users WHERE tenant = 't30' ORDER BY subject;
SELECT u.subject, h.event, h.from_state, h.to_state, h.detail ->> 'reason' AS reason,
	   h.actor = session_user AS by_caller
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't30' AND h.event = 'hold' ORDER BY u.subject;
SELECT subject, state, reason, until, held_by = session_user AS by_caller
  FROM lifecycle.holds WHERE tenant = 't30' ORDER BY subject;
SELECT held, next_event FROM lifecycle_status('h3', 't30');

-- Far past every timer: nothing fires, no history, no violation reported.
SELECT count(*) AS history_before FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id WHERE u.tenant = 't30' \gset
SELECT rt.travel('400 days');
SELECT lifecycle_tick() AS transitions;
SELECT subject, state FROM lifecycle.users WHERE tenant = 't30' ORDER BY subject;
SELECT count(*) - :history_before AS new_history_rows FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id WHERE u.tenant = 't30';
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 't30';
SELECT count(*) AS overdue FROM lifecycle.overdue WHERE tenant = 't30';

-- Application events still work while held (but arm no timer).
SELECT lifecycle_touch('h1', 't30');
SELECT lifecycle_complete('h1', 't30');
SELECT state, held, next_event FROM lifecycle_status('h1', 't30');
SELECT message, status FROM rt.msgs(rt.uid('h1', 't30'));
-- Erasure is refused.
SELECT lifecycle_erase('h3', 't30', 'request');
\echo :LAST_ERROR_SQLSTATE

-- Release: a history row, and the overdue timers fire at the next tick, in
-- due order: both archive reminders are reached after the archive they
-- announce (reminder_skipped, no message); the archive was due 370 days
-- ago and the erasure counts from then (lateness never extends
-- retention), so h3 is archived and erased in the same tick.
SELECT rt.uid('h3', 't30') AS h3_id \gset
SELECT lifecycle_release('h3', 't30');
SELECT held, hold_reason, next_event FROM lifecycle.users
 WHERE tenant = 't30' AND subject = 'h3';
SELECT subject, next_event FROM lifecycle.overdue WHERE tenant = 't30';
SELECT lifecycle_tick() AS transitions;
SELECT event, from_state, to_state, actor = session_user AS by_caller, timer
  FROM rt.hist(:h3_id);
SELECT message FROM lifecycle.outbox WHERE user_id = :h3_id ORDER BY id;
SELECT subject, state, held FROM lifecycle.users WHERE tenant = 't30' ORDER BY subject;

-- A hold with an end (lifecycle clock) lapses by itself: its timer is the
-- only one while it lasts.
SELECT lifecycle_invite('h2', 'h2@example.com', 't30') > 0 AS invited;
SELECT lifecycle_hold('h2', 't30', 'until the audit ends', lifecycle_now() + interval '10 days');
SELECT held, next_event, next_at = hold_until AS at_until,
	   hold_until - state_since > interval '9 days' AS in_ten_days
  FROM lifecycle.users WHERE tenant = 't30' AND subject = 'h2';
SELECT subject, until IS NOT NULL AS has_until FROM lifecycle.holds
 WHERE tenant = 't30' ORDER BY subject;
SELECT rt.travel('5 days');
SELECT lifecycle_tick() AS transitions;  -- the 3-day reminder is held back
SELECT rt.travel('6 days');
SELECT lifecycle_tick() AS transitions;  -- lapse, then both reminders
SELECT event, from_state, to_state, actor, timer FROM rt.hist(rt.uid('h2', 't30'));
SELECT held, hold_reason, hold_until, next_event FROM lifecycle.users
 WHERE tenant = 't30' AND subject = 'h2';
SELECT subject FROM lifecycle.holds WHERE tenant = 't30' ORDER BY subject;

-- Bad holds.
\set VERBOSITY terse
SELECT lifecycle_hold('h2', 't30', 'too late', lifecycle_now() - interval '1 day');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_hold('h2', 't30', 'forever', 'infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_hold('h2', 't30', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_hold('h2', 't30', '');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_hold('nobody', 't30', 'audit');
\echo :LAST_ERROR_SQLSTATE
SELECT held FROM lifecycle.users WHERE tenant = 't30' AND subject = 'h2';

SELECT rt.cleanup('t30') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
