-- An unrouted message that the application claimed and that an erasure
-- then cancelled is final like any other cancelled message: it is pruned
-- its policy's outbox_retention after the erasure (issue 20; 0.2.0 kept
-- it forever, cancelled with its lease still set, while the unclaimed one
-- went).  Its lease is void: the application can no longer acknowledge it.
-- And lifecycle_prune_history() returns how many history rows it deleted.
CREATE ROLE t83_app LOGIN IN ROLE lifecycle_app;
SELECT lifecycle_grant_tenant('t83_app', 't83') AS granted;
SELECT lifecycle_define_policy('t83', '{"outbox_retention": "30 days",
  "history_retention": "10 days",
  "invite_reminders": [], "invite_expires_after": "400 days"}') > 0 AS t83;
-- No channel: each invite writes one unrouted message.
SELECT lifecycle_invite('claimed', 'c@example.com', 't83', 't83') > 0 AS claimed,
	   lifecycle_invite('unclaimed', 'u@example.com', 't83', 't83') > 0 AS unclaimed;
CREATE VIEW t83_box AS
SELECT o.id, o.status, o.claimed_at IS NOT NULL AS leased,
	   o.payload = '{}' AS scrubbed
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't83';
GRANT SELECT ON t83_box TO PUBLIC;

-- The application claims one (the oldest: claimed's invite).
SET ROLE t83_app;
SELECT count(*) AS claimed FROM lifecycle_claim_messages(1);
RESET ROLE;
SELECT min(id) AS claimed_id FROM t83_box WHERE leased \gset
SELECT status, leased, scrubbed FROM t83_box ORDER BY id;

-- Both users are erased: both messages cancelled and scrubbed, the lease
-- of the claimed one ended with it.
SELECT lifecycle_erase('claimed', 't83') > 0 AS erased,
	   lifecycle_erase('unclaimed', 't83') > 0 AS erased;
SELECT status, leased, scrubbed FROM t83_box ORDER BY id;
-- The late acknowledgement changes nothing.
SET ROLE t83_app;
SELECT lifecycle_ack_messages(ARRAY[:claimed_id]::bigint[]) AS acked;
RESET ROLE;
SELECT status, leased FROM t83_box ORDER BY id;

-- 40 days on: both are past their 30 days and go, the claimed one too.
SELECT lifecycle_travel('40 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SET ROLE lifecycle_admin;
SELECT lifecycle_prune_outbox() >= 0 AS pruned;
RESET ROLE;
SELECT count(*) AS left_in_outbox FROM t83_box;

-- lifecycle_prune_history(): the number of history rows deleted (each
-- erased user here has two: invite and erase); the evidence rows stay.
SELECT count(*) AS history_rows
  FROM lifecycle.history h JOIN lifecycle.erasures e ON e.user_id = h.user_id
 WHERE e.tenant = 't83';
SELECT count(*) AS h_before FROM lifecycle.history \gset
SET ROLE lifecycle_admin;
SELECT lifecycle_prune_history() AS pruned \gset
RESET ROLE;
SELECT :pruned >= 4 AS ours_among_them,
	   :pruned = :h_before - count(*) AS returns_history_rows_deleted
  FROM lifecycle.history;
SELECT count(*) AS history_rows
  FROM lifecycle.history h JOIN lifecycle.erasures e ON e.user_id = h.user_id
 WHERE e.tenant = 't83';
SELECT count(*) AS evidence FROM lifecycle.erasures WHERE tenant = 't83';
DROP VIEW t83_box;
