-- Calls the graph does not allow: SQLSTATE 55000, a message naming the
-- subject's state and a HINT naming the call that would work; nothing is
-- written.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- One subject in each state.
-- (The invitation that expires is sent 76 days later, so that its
-- erasure, expired_erase_after after the expiry was due, is still ahead.)
SELECT lifecycle_invite('dor', 'dor@example.com', 't23') > 0 AS invited;
SELECT lifecycle_register('dor', 't23');
SELECT rt.travel('76 days');
SELECT lifecycle_invite('exp', 'exp@example.com', 't23') > 0 AS invited;
SELECT rt.travel('14 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT lifecycle_invite(s, s || '@example.com', 't23') > 0 AS invited
  FROM unnest(ARRAY['inv', 'act', 'com', 'arc', 'hld']) s ORDER BY s;
SELECT lifecycle_register(s, 't23') FROM unnest(ARRAY['act', 'com', 'arc', 'hld']) s ORDER BY s;
SELECT lifecycle_complete('com', 't23');
SELECT lifecycle_archive('arc', 't23');
SELECT lifecycle_hold('hld', 't23', 'litigation');
SELECT subject, state, held FROM lifecycle.users WHERE tenant = 't23' ORDER BY subject;
SELECT count(*) AS history_before FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id WHERE u.tenant = 't23' \gset
SELECT count(*) AS outbox_before FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id WHERE u.tenant = 't23' \gset

-- invite of an archived subject: restore it instead.
SELECT lifecycle_invite('arc', 'arc@example.com', 't23');
\echo :LAST_ERROR_SQLSTATE

-- register: only from invited.
SELECT lifecycle_register('dor', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_register('com', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_register('arc', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_register('exp', 't23');
\echo :LAST_ERROR_SQLSTATE

-- touch of invited, archived, expired.
SELECT lifecycle_touch('inv', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_touch('arc', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_touch('exp', 't23');
\echo :LAST_ERROR_SQLSTATE

-- complete of invited, archived, expired.
SELECT lifecycle_complete('inv', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_complete('arc', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_complete('exp', 't23');
\echo :LAST_ERROR_SQLSTATE

-- archive of an expired invitation.
SELECT lifecycle_archive('exp', 't23');
\echo :LAST_ERROR_SQLSTATE

-- restore of invited, expired.
SELECT lifecycle_restore('inv', 't23');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_restore('exp', 't23');
\echo :LAST_ERROR_SQLSTATE

-- erase under a legal hold: release it first.
SELECT lifecycle_erase('hld', 't23');
\echo :LAST_ERROR_SQLSTATE

-- release without a hold.
SELECT lifecycle_release('act', 't23');
\echo :LAST_ERROR_SQLSTATE

-- Nothing was written, no state changed.
SELECT count(*) - :history_before AS new_history_rows FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id WHERE u.tenant = 't23';
SELECT count(*) - :outbox_before AS new_messages FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id WHERE u.tenant = 't23';
SELECT count(*) AS erasures FROM lifecycle.erasures WHERE tenant = 't23';
SELECT subject, state, held FROM lifecycle.users WHERE tenant = 't23' ORDER BY subject;

-- A refusal inside the application's transaction aborts it as a whole.
BEGIN;
SELECT lifecycle_touch('act', 't23');
SELECT lifecycle_touch('inv', 't23');
ROLLBACK;

SELECT rt.cleanup('t23') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
