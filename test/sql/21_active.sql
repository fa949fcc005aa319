-- The account branch of the graph through the SQL API and lifecycle_tick():
-- register, touch, dormancy, completion, archive reminders, archiving by
-- timer, erasure by timer.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT lifecycle_invite(s, s || '@example.com', 't21') > 0 AS invited
  FROM unnest(ARRAY['cat', 'dan', 'eve']) s ORDER BY s;

-- invited -> active (register): history row, no message; dormancy timer
-- from last_seen.
SELECT lifecycle_register('cat', 't21');
SELECT state, next_event FROM lifecycle_status('cat', 't21');
SELECT last_seen = state_since AS seen_now, next_at - last_seen AS dormant_after
  FROM lifecycle.users WHERE tenant = 't21' AND subject = 'cat';
SELECT * FROM rt.hist(rt.uid('cat', 't21'));
SELECT * FROM rt.msgs(rt.uid('cat', 't21'));

-- active -> active (touch) after touch_granularity: last_seen moves to now,
-- the dormancy timer is re-armed, no history row, no message.
SELECT rt.travel('2 hours');
BEGIN;
SELECT lifecycle_touch('cat', 't21');
SELECT last_seen >= lifecycle_now() AS seen_now, last_seen > state_since AS moved,
	   next_at - last_seen AS dormant_after
  FROM lifecycle.users WHERE tenant = 't21' AND subject = 'cat';
COMMIT;
SELECT count(*) AS history_rows FROM lifecycle.history WHERE user_id = rt.uid('cat', 't21');
SELECT count(*) AS messages FROM lifecycle.outbox WHERE user_id = rt.uid('cat', 't21');

-- Register the others; dan completes at once, eve stays active.
SELECT lifecycle_register(s, 't21') FROM unnest(ARRAY['dan', 'eve']) s ORDER BY s;

-- active -> completed (complete): archive_notice carrying the archive date.
SELECT lifecycle_complete('dan', 't21');
SELECT state, next_event FROM lifecycle_status('dan', 't21');
SELECT * FROM rt.msgs(rt.uid('dan', 't21'));
SELECT (o.payload ->> 'archive_at')::timestamptz - u.state_since AS archive_after,
	   o.payload ->> 'state' AS state, o.payload ->> 'subject' AS subject
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't21' AND u.subject = 'dan' AND o.message = 'archive_notice';
-- Archive reminders are offsets before the archive time (7 days, then 1 day).
SELECT next_at - state_since AS first_reminder_after FROM lifecycle.users
 WHERE tenant = 't21' AND subject = 'dan';

-- 90 days without activity: cat and eve go dormant (archive_notice);
-- the clock jumps 90 days at once, so dan's timers catch up in one tick:
-- both archive reminders are reached after the archive they announce and
-- are skipped (history reminder_skipped, no message), then the archive
-- timer archives.
SELECT rt.travel('90 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT subject, state, next_event FROM lifecycle.users WHERE tenant = 't21' ORDER BY subject;
SELECT * FROM rt.hist(rt.uid('dan', 't21'));
SELECT * FROM rt.msgs(rt.uid('dan', 't21'));
-- archived -> the erase timer counts from when the archive was due, not
-- from the late tick (lateness never extends retention).
SELECT u.next_at - h.due_at AS erase_after, u.deadline_event,
	   u.deadline_at = u.next_at AS deadline_is_timer
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE u.tenant = 't21' AND u.subject = 'dan';
-- active -> dormant (timer): archive_notice with the archive date.
SELECT * FROM rt.hist(rt.uid('eve', 't21'));
SELECT * FROM rt.msgs(rt.uid('eve', 't21'));
SELECT (o.payload ->> 'archive_at')::timestamptz - u.state_since AS archive_after,
	   u.next_at - u.state_since AS first_reminder_after
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't21' AND u.subject = 'eve' AND o.message = 'archive_notice';
-- The dormancy timer of cat counted from the touch, not from registering.
SELECT h.due_at - (SELECT at FROM lifecycle.history r WHERE r.user_id = h.user_id
					AND r.event = 'register') >= interval '90 days 2 hours' AS counted_from_touch
  FROM lifecycle.history h WHERE h.user_id = rt.uid('cat', 't21') AND h.event = 'dormant';

-- dormant -> active (touch): history row, no message, dormancy re-armed.
SELECT lifecycle_touch('cat', 't21');
SELECT state, next_event FROM lifecycle_status('cat', 't21');
SELECT next_at - last_seen AS dormant_after, last_seen = state_since AS seen_now
  FROM lifecycle.users WHERE tenant = 't21' AND subject = 'cat';
SELECT event, from_state, to_state, timer FROM rt.hist(rt.uid('cat', 't21'));
SELECT message FROM rt.msgs(rt.uid('cat', 't21'));

-- dormant -> completed (complete): archive_notice; archiving now counts
-- from the completion.
SELECT lifecycle_complete('eve', 't21');
SELECT event, from_state, to_state FROM rt.hist(rt.uid('eve', 't21'));
SELECT message, state FROM rt.msgs(rt.uid('eve', 't21'));
SELECT next_at - state_since AS first_reminder_after FROM lifecycle.users
 WHERE tenant = 't21' AND subject = 'eve';

-- completed -> active (touch).
SELECT lifecycle_complete('cat', 't21');
SELECT lifecycle_touch('cat', 't21');
SELECT event, from_state, to_state FROM rt.hist(rt.uid('cat', 't21')) OFFSET 3;

-- completed: each archive reminder fires at its own time, one history row
-- and one archive_reminder message each, then the archive timer archives.
SELECT rt.travel('23 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT state, next_event FROM lifecycle_status('eve', 't21');
SELECT next_at - state_since AS second_reminder_after FROM lifecycle.users
 WHERE tenant = 't21' AND subject = 'eve';
SELECT rt.travel('6 days');
SELECT lifecycle_tick() AS transitions;
SELECT state, next_event FROM lifecycle_status('eve', 't21');
SELECT next_at - state_since AS archive_after FROM lifecycle.users
 WHERE tenant = 't21' AND subject = 'eve';
SELECT rt.travel('1 day');
SELECT lifecycle_tick() AS transitions;
SELECT event, from_state, to_state, actor, timer FROM rt.hist(rt.uid('eve', 't21'));
SELECT message, state, has_archive_at FROM rt.msgs(rt.uid('eve', 't21'));
-- The reminders carry the same archive date as the notice.
SELECT count(*) AS messages, count(DISTINCT o.payload ->> 'archive_at') AS archive_dates
  FROM lifecycle.outbox o
 WHERE o.user_id = rt.uid('eve', 't21') AND o.payload ->> 'state' = 'completed'
   AND o.message IN ('archive_notice', 'archive_reminder');
SELECT h.event, h.due_at - c.at AS due_after_completion
  FROM lifecycle.history h
  JOIN lifecycle.history c ON c.user_id = h.user_id AND c.event = 'complete'
 WHERE h.user_id = rt.uid('eve', 't21') AND h.id > c.id
 ORDER BY h.id;

-- archived -> erased by the erase_after timer (365 days): evidence row,
-- subject, e-mail and attrs gone, history kept.
SELECT id AS dan_id FROM lifecycle.users WHERE tenant = 't21' AND subject = 'dan' \gset
SELECT rt.travel('364 days');  -- dan's erasure is due, eve's is not
SELECT lifecycle_tick() AS transitions;
SELECT subject, email, attrs, state, next_at FROM lifecycle.users WHERE id = :dan_id;
SELECT event, from_state, to_state, actor, timer FROM rt.hist(:dan_id);
SELECT policy, reason, state_before, requested_by FROM lifecycle.erasures
 WHERE user_id = :dan_id;
SELECT subject, state FROM lifecycle.users WHERE tenant = 't21' ORDER BY id;

SELECT rt.cleanup('t21') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
