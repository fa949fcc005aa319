-- Outbox retention: the policy key "outbox_retention" (default 30 days) is
-- validated like every interval; messages in a final status (sent, dead,
-- cancelled, blocked) are deleted that long after they reached it, unrouted
-- ones nobody claimed that long after their creation, pending ones never;
-- lifecycle_tick() prunes a bounded batch per call (pg_cron mode),
-- lifecycle._prune_outbox(n) at most n rows, lifecycle_prune_outbox() the
-- rest.  Erasure still scrubs payloads at once.
SELECT definition -> 'outbox_retention' AS default_retention
  FROM lifecycle.policies WHERE name = 'default' AND version = 1;
-- Validation: 22023 naming the key.
\set VERBOSITY terse
SELECT lifecycle_define_policy('t80-bad', '{"outbox_retention": "0 days"}');
SELECT lifecycle_define_policy('t80-bad', '{"outbox_retention": "-3 days"}');
SELECT lifecycle_define_policy('t80-bad', '{"outbox_retention": 30}');
SELECT lifecycle_define_policy('t80-bad', '{"outbox_retention": "soon"}');
SELECT lifecycle._prune_outbox(-1);
\set VERBOSITY default
SELECT count(*) AS bad_stored FROM lifecycle.policies WHERE name = 't80-bad';

-- Ten days for t80 (no channel: unrouted), thirty by default (t80-d), and
-- a channel that never delivers here (the sender is off: pending).
SELECT lifecycle_add_channel('t80-hook', 'webhook', 'http://127.0.0.1:9/hook',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT lifecycle_define_policy('t80', '{"outbox_retention": "10 days",
  "invite_reminders": [], "invite_expires_after": "200 days"}') > 0 AS t80;
SELECT lifecycle_define_policy('t80-d', '{"invite_reminders": [],
  "invite_expires_after": "200 days"}') > 0 AS t80_d;
SELECT lifecycle_define_policy('t80-p', '{"outbox_retention": "10 days",
  "invite_reminders": [], "invite_expires_after": "200 days",
  "channel": "t80-hook"}') > 0 AS t80_p;
SELECT definition -> 'outbox_retention' AS t80_d_retention
  FROM lifecycle.policies WHERE name = 't80-d';

SELECT count(lifecycle_invite('u' || i, 'u' || i || '@example.com', 't80', 't80'))
  FROM generate_series(1, 8) i;
SELECT lifecycle_invite('d1', 'd1@example.com', 't80', 't80-d') > 0 AS d1,
	   lifecycle_invite('p1', 'p1@example.com', 't80', 't80-p') > 0 AS p1;

-- Final statuses as the sender and the application write them.
UPDATE lifecycle.outbox o SET status = 'sent', sent_at = lifecycle_now(),
	   last_attempt_at = lifecycle_now(), attempts = 1
  FROM lifecycle.users u
 WHERE u.id = o.user_id AND u.subject IN ('u1', 'u2');
UPDATE lifecycle.outbox o SET status = 'dead', last_attempt_at = lifecycle_now(),
	   attempts = 12
  FROM lifecycle.users u
 WHERE u.id = o.user_id AND u.subject = 'u3';
UPDATE lifecycle.outbox o SET status = 'blocked', last_attempt_at = lifecycle_now()
  FROM lifecycle.users u
 WHERE u.id = o.user_id AND u.subject = 'u4';

CREATE VIEW t80_outbox AS
SELECT u.subject, o.status, o.payload = '{}' AS scrubbed
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't80';
SELECT status, count(*) FROM t80_outbox GROUP BY status ORDER BY status;

-- Day 5: u5 is erased (its message cancelled and scrubbed at once); u6's
-- message is sent on day 5, so it counts from then.
SELECT lifecycle_travel('5 days') IS NOT NULL AS travelled;
SELECT lifecycle_erase('u5', 't80') > 0 AS erased;
UPDATE lifecycle.outbox o SET status = 'sent', sent_at = lifecycle_now(),
	   last_attempt_at = lifecycle_now(), attempts = 1
  FROM lifecycle.users u
 WHERE u.id = o.user_id AND u.subject = 'u6';
SELECT subject, status, scrubbed FROM t80_outbox
 WHERE subject IS NULL OR subject = 'u6' ORDER BY status;

-- Day 9: nothing is old enough yet.
SELECT lifecycle_travel('4 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT count(*) AS day9 FROM t80_outbox;

-- Day 11: what reached its status on day 0 is past ten days.  Bounded
-- batches: two rows, then two more, then the rest.
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle._prune_outbox(2) AS batch1;
SELECT count(*) AS after_batch1 FROM t80_outbox;
SELECT lifecycle._prune_outbox(2) AS batch2;
SELECT count(*) AS after_batch2 FROM t80_outbox;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT coalesce(subject, '(erased)') AS subject, status, scrubbed
  FROM t80_outbox ORDER BY 1;

-- Day 16: u5's cancellation (day 5) and u6's delivery (day 5) are past ten
-- days; d1 (30 days) and the pending p1 stay.
SELECT lifecycle_travel('5 days') IS NOT NULL AS travelled;
SET ROLE lifecycle_admin;
SELECT lifecycle_prune_outbox() AS pruned;
RESET ROLE;
SELECT coalesce(subject, '(erased)') AS subject, status FROM t80_outbox ORDER BY 1;

-- Day 31: d1's unrouted invite goes; p1 is pending and stays forever.
SELECT lifecycle_travel('15 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT subject, status FROM t80_outbox ORDER BY 1;
-- Neither the app nor the auditor may prune.
SET ROLE lifecycle_app;
SELECT lifecycle_prune_outbox();
RESET ROLE;
DROP VIEW t80_outbox;
