-- The invitation branch of the graph through the SQL API and
-- lifecycle_tick(): invite, reminders, expiry, re-invitation, erasure of an
-- expired invitation, and a new workflow for an erased subject.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- ann's policy is the default one but keeps messages for a year
-- (outbox_retention), so that her erasure below still finds undelivered
-- messages to cancel and scrub (pruning has its own test, 80).
SELECT lifecycle_define_policy('t20-keep', '{"outbox_retention": "1 year"}') AS version;

-- (none) -> invited: one history row, an "invite" message.  The policy
-- has no channel, so the message is written "unrouted".
SELECT lifecycle_invite('ann', 'ann@example.com', 't20', 't20-keep') > 0 AS invited;
SELECT state, next_event, held, policy, policy_version
  FROM lifecycle_status('ann', 't20');
SELECT u.email, u.region, u.attrs, u.step, u.last_seen IS NULL AS never_seen,
	   u.next_at - u.state_since AS first_reminder_after,
	   u.state_since = (SELECT at FROM lifecycle.history h WHERE h.user_id = u.id) AS since_invite
  FROM lifecycle.users u WHERE tenant = 't20' AND subject = 'ann';
SELECT * FROM rt.hist(rt.uid('ann', 't20'));
SELECT * FROM rt.msgs(rt.uid('ann', 't20'));
SELECT o.payload - 'email' AS payload_without_email, o.next_attempt_at IS NULL AS no_attempt
  FROM lifecycle.outbox o WHERE o.user_id = rt.uid('ann', 't20');
SELECT h.actor = session_user AS actor_is_caller, h.due_at IS NULL AS no_due
  FROM lifecycle.history h WHERE h.user_id = rt.uid('ann', 't20');

-- Nothing is due yet.
SELECT lifecycle_tick() AS transitions;

-- Each invite_reminders offset ("3 days", "7 days" from the invitation)
-- fires one self-transition: a history row and an invite_reminder message.
SELECT rt.travel('3 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT state, next_event FROM lifecycle_status('ann', 't20');
SELECT step, next_at - state_since AS next_after FROM lifecycle.users
 WHERE tenant = 't20' AND subject = 'ann';
SELECT lifecycle_tick() AS transitions;  -- fired once only
SELECT rt.travel('4 days');
SELECT lifecycle_tick() AS transitions;
SELECT state, next_event FROM lifecycle_status('ann', 't20');
SELECT step, next_at - state_since AS expires_after FROM lifecycle.users
 WHERE tenant = 't20' AND subject = 'ann';
-- Each reminder's due_at is its offset from the invitation.
SELECT h.event, h.due_at - i.at AS due_after_invite, h.at >= h.due_at AS fired_when_due
  FROM lifecycle.history h
  JOIN lifecycle.history i ON i.user_id = h.user_id AND i.event = 'invite'
 WHERE h.user_id = rt.uid('ann', 't20') AND h.event = 'invite_reminder'
 ORDER BY h.id;

-- invite_expires_after ("14 days") -> expired, no message.
SELECT rt.travel('7 days');
SELECT lifecycle_tick() AS transitions;
SELECT state, next_event FROM lifecycle_status('ann', 't20');
SELECT * FROM rt.hist(rt.uid('ann', 't20'));
SELECT * FROM rt.msgs(rt.uid('ann', 't20'));
-- The erasure timer counts from when the expiry was due, not from when
-- it fired (lateness never extends retention); state_since is when it
-- fired.
SELECT u.next_at - h.due_at AS erase_after_due, u.deadline_event,
	   u.deadline_at = u.next_at AS deadline_is_timer,
	   u.state_since = h.at AS since_fired
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE tenant = 't20' AND subject = 'ann';

-- expired -> invited: invite again returns the same id, writes a new
-- history row and an invite message to the new address; the reminders
-- start over.
SELECT lifecycle_invite('ann', 'ann.again@example.com', 't20', 't20-keep') = rt.uid('ann', 't20') AS same_id;
SELECT state, next_event FROM lifecycle_status('ann', 't20');
SELECT u.email, u.step, u.next_at - u.state_since AS first_reminder_after
  FROM lifecycle.users u WHERE tenant = 't20' AND subject = 'ann';
SELECT * FROM rt.hist(rt.uid('ann', 't20'));
SELECT * FROM rt.msgs(rt.uid('ann', 't20'));

-- A late tick catches up in due order in one call: both reminders are
-- reached after the expiry they announce, so they are skipped (history
-- reminder_skipped, no message), then the invitation expires.
SELECT rt.travel('14 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT event, from_state, to_state FROM rt.hist(rt.uid('ann', 't20'))
 OFFSET 5;

-- expired_erase_after ("30 days") -> erased: evidence row, personal data
-- gone, undelivered messages cancelled with their payloads scrubbed.
SELECT rt.travel('29 days');
SELECT lifecycle_tick() AS transitions;  -- not yet
SELECT rt.travel('1 day 1 minute');
SELECT id AS ann_id FROM lifecycle.users WHERE tenant = 't20' AND subject = 'ann' \gset
SELECT lifecycle_tick() AS transitions;
SELECT subject, email, attrs, state, next_at, next_event
  FROM lifecycle.users WHERE id = :ann_id;
SELECT event, from_state, to_state, actor, timer FROM rt.hist(:ann_id) OFFSET 8;
SELECT message, status, payload FROM lifecycle.outbox WHERE user_id = :ann_id ORDER BY id;
SELECT tenant, policy, reason, state_before, requested_by
  FROM lifecycle.erasures WHERE user_id = :ann_id;

-- An erased subject is unknown ...
SELECT * FROM lifecycle_status('ann', 't20');
\echo :LAST_ERROR_SQLSTATE
-- ... and inviting it again starts a new workflow with a new id.
SELECT lifecycle_invite('ann', 'ann@example.com', 't20') <> :ann_id AS new_id;
SELECT * FROM rt.hist(rt.uid('ann', 't20'));
SELECT count(*) AS rows_for_ann FROM lifecycle.users WHERE tenant = 't20'
   AND (subject = 'ann' OR id = :ann_id);

-- Invited users may be archived by an admin (covered in 22_admin) or
-- registered (21_active); with a channel the message is "pending" at once.
-- (lifecycle.enabled is off: no sender runs.)
SELECT count(*) AS channels_added
  FROM lifecycle_add_channel('t20-hook', 'webhook', 'https://hooks.example.com/t20',
							 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT lifecycle_define_policy('t20-routed', '{"channel": "t20-hook"}') AS version;
SELECT lifecycle_invite('bob', 'bob@example.com', 't20', 't20-routed', 'eu',
						'{"name": "Bob"}') > 0 AS invited;
SELECT o.message, o.channel, o.status, o.payload ->> 'region' AS region,
	   o.payload -> 'attrs' AS attrs, o.payload ->> 'policy' AS policy,
	   o.next_attempt_at = o.created_at AS due_now
  FROM lifecycle.outbox o WHERE o.user_id = rt.uid('bob', 't20');

SELECT rt.cleanup('t20') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
