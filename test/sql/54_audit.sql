-- Audit trail: history.actor is the acting role for application and
-- admin calls and 'lifecycle worker' for timers; lifecycle_history()
-- shows it; lifecycle_prune_history() deletes the trail of subjects erased
-- longer ago than their policy's history_retention, and nothing else.
CREATE ROLE cmp_h_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_h_admin LOGIN IN ROLE lifecycle_admin;
SELECT lifecycle_define_policy('cmp_hr', '{"invite_reminders": ["1 day"],
  "invite_expires_after": "2 days", "expired_erase_after": "1 day",
  "archive_after": "2 days", "archive_reminders": ["1 day"],
  "erase_after": "3 days", "history_retention": "30 days"}') > 0 AS defined;

SET ROLE cmp_h_app;
SELECT lifecycle_invite('h1', 'h1@example.com', 'cmp_h', 'cmp_hr') > 0 AS h1,
	   lifecycle_invite('h2', 'h2@example.com', 'cmp_h', 'cmp_hr') > 0 AS h2,
	   lifecycle_invite('h3', 'h3@example.com', 'cmp_h', 'cmp_hr') > 0 AS h3;
SELECT lifecycle_register('h1', 'cmp_h'), lifecycle_register('h3', 'cmp_h');
SELECT lifecycle_complete('h1', 'cmp_h');
RESET ROLE;
SET ROLE cmp_h_admin;
SELECT lifecycle_hold('h1', 'cmp_h', 'records request');
SELECT lifecycle_release('h1', 'cmp_h');
SELECT lifecycle_archive('h3', 'cmp_h');
RESET ROLE;
SET ROLE cmp_h_app;
SELECT lifecycle_restore('h3', 'cmp_h');
RESET ROLE;
-- Timers: h2's invitation reminds, expires, and is erased; h1 is reminded,
-- archived and erased.
SELECT lifecycle_travel('1 day 1 hour') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT lifecycle_travel('1 day') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 2 AS ticked;

-- The trails, oldest first, with who did what.
SELECT event, from_state, to_state, actor, detail,
	   (due_at IS NOT NULL) = (actor = 'lifecycle worker') AS due_at_iff_timer
  FROM lifecycle_history('h1', 'cmp_h');
SELECT event, from_state, to_state, actor FROM lifecycle_history('h3', 'cmp_h');
SELECT event, from_state, to_state, actor FROM lifecycle_history('h2', 'cmp_h');

SELECT lifecycle_travel('1 day') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;                  -- h2 erased
SELECT lifecycle_travel('3 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;                  -- h1 erased
SELECT lifecycle_status('h1', 'cmp_h');                  -- unknown now

-- Erased subjects keep their trail (by user id) until history_retention.
CREATE TEMP TABLE cmp_erased AS
SELECT e.user_id, e.state_before FROM lifecycle.erasures e WHERE e.tenant = 'cmp_h';
SELECT c.state_before, h.event, h.actor
  FROM cmp_erased c JOIN lifecycle.history h ON h.user_id = c.user_id
 ORDER BY c.state_before, h.at, h.id;
SELECT lifecycle_prune_history() >= 0 AS pruned;
SELECT count(*) AS erased_trail_rows
  FROM lifecycle.history h JOIN cmp_erased c ON c.user_id = h.user_id;
-- Auditors read it in lifecycle.audit_trail: who did what and when, with
-- tenant and current state, no subject; joined to the evidence by user_id.
CREATE ROLE cmp_h_auditor LOGIN IN ROLE lifecycle_auditor;
SET ROLE cmp_h_auditor;
SELECT e.state_before, e.reason, t.event, t.actor, t.current_state
  FROM lifecycle.erasures e JOIN lifecycle.audit_trail t ON t.user_id = e.user_id
 WHERE e.tenant = 'cmp_h' ORDER BY e.state_before, t.at, t.id;
RESET ROLE;

-- 29 days after the later erasure: still kept.  31 days: pruned, with the
-- evidence rows and the live subject's trail untouched.
SELECT lifecycle_travel('29 days') IS NOT NULL AS travelled;
SELECT lifecycle_prune_history() >= 0 AS pruned;
SELECT c.state_before, count(h.id) AS trail_rows
  FROM cmp_erased c LEFT JOIN lifecycle.history h ON h.user_id = c.user_id
 GROUP BY 1 ORDER BY 1;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
-- The worker's form deletes in bounded batches.
SELECT lifecycle._prune_history(3) AS first_batch;
SELECT lifecycle._prune_history(-1);
SET ROLE cmp_h_admin;
SELECT lifecycle_prune_history() >= 5 AS pruned;
SELECT lifecycle._prune_history(1);
RESET ROLE;
SELECT count(*) AS erased_trail_rows
  FROM lifecycle.history h JOIN cmp_erased c ON c.user_id = h.user_id;
SELECT state_before, reason, requested_by FROM lifecycle.erasures
 WHERE tenant = 'cmp_h' ORDER BY state_before;
SELECT count(*) AS h3_trail FROM lifecycle_history('h3', 'cmp_h');
SELECT lifecycle_prune_history() AS pruned_again;

-- Policy versions record who defined them.
SET ROLE cmp_h_admin;
SELECT lifecycle_define_policy('cmp_hr', '{"history_retention": "40 days"}') AS version;
RESET ROLE;
SELECT version, CASE WHEN created_by = session_user THEN '(me)' ELSE created_by END AS created_by
  FROM lifecycle.policies WHERE name = 'cmp_hr' ORDER BY version;

-- The application may not prune.
SET ROLE cmp_h_app;
SELECT lifecycle_prune_history();
RESET ROLE;
DROP ROLE cmp_h_app, cmp_h_admin, cmp_h_auditor;
