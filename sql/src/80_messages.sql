-- lifecycle: delivery channels, the sender's bookkeeping, and the views on
-- message delivery (src/channels.c, src/sender.c, src/http.c,
-- src/store_outbox.c).

-- Add a channel, or replace one of the same name (new target, secret or
-- options; a channel disabled by a 410 is enabled again).  Validated in C:
-- kind webhook (http/https target, secret whsec_<base64>) or smtp
-- (smtp/smtps target, options.from); unknown option keys are refused.
CREATE FUNCTION @extschema@.lifecycle_add_channel(name text, kind text,
	target text, secret text = NULL, options jsonb = '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_add_channel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Put dead letters (of one channel, or all) back in the queue with a fresh
-- set of attempts; messages of erased users stay where they are.
CREATE FUNCTION @extschema@.lifecycle_retry_dead(channel text = NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_retry_dead'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The webhook-signature header value of a message, for tests against the
-- Standard Webhooks examples and for receivers written in SQL.
CREATE FUNCTION lifecycle._webhook_signature(secret text, id text,
	ts bigint, body text)
RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_webhook_signature'
LANGUAGE C IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The e-mail a message of a workflow version (the latest when NULL) would
-- be with this payload through an smtp channel with these options: the
-- sender's rendering over the workflow's own template, for tests and for
-- reviewing a definition's templates before any instance runs it.
CREATE FUNCTION lifecycle._render_mail(workflow text, message text,
	payload jsonb, options jsonb = '{}', version int = NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_render_mail'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_add_channel(text, text, text, text, jsonb),
	@extschema@.lifecycle_retry_dead(text),
	lifecycle._webhook_signature(text, text, bigint, text),
	lifecycle._render_mail(text, text, jsonb, jsonb, int)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_add_channel(text, text, text, text, jsonb),
	@extschema@.lifecycle_retry_dead(text),
	lifecycle._webhook_signature(text, text, bigint, text),
	lifecycle._render_mail(text, text, jsonb, jsonb, int)
TO lifecycle_admin;

-- Channel secrets are readable by the owner only: admins may see every
-- other column of lifecycle.channels, nobody else any.
REVOKE ALL ON lifecycle.channels FROM PUBLIC;
GRANT SELECT (name, kind, target, options, enabled, disabled_reason, created_at)
	ON lifecycle.channels TO lifecycle_admin;

-- Delivery status per channel, status and workflow (0.3.0: the workflow
-- of the instance the message is about): how many messages, the oldest,
-- the next retry, the latest error.  No target, secret, payload, e-mail or
-- attrs.  A channel disabled by a 410 shows enabled = false with the
-- reason; its messages stay pending until it is added again.
CREATE VIEW lifecycle.comms WITH (security_barrier) AS
SELECT o.channel, c.kind, c.enabled, c.disabled_reason, o.status,
	   count(*) AS messages,
	   count(*) FILTER (WHERE o.claimed_at IS NOT NULL) AS in_flight,
	   min(o.created_at) AS oldest,
	   min(o.created_at) FILTER (WHERE o.status = 'pending') AS oldest_pending,
	   min(o.next_attempt_at) FILTER (WHERE o.status = 'pending') AS next_attempt_at,
	   max(o.sent_at) AS last_sent_at,
	   max(o.last_attempt_at) AS last_attempt_at,
	   sum(o.attempts) AS attempts,
	   (pg_catalog.array_agg(o.last_error
			ORDER BY o.last_attempt_at DESC NULLS LAST, o.id DESC)
		 FILTER (WHERE o.last_error IS NOT NULL))[1] AS last_error,
	   u.workflow
  FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
  LEFT JOIN lifecycle.channels c ON c.name = o.channel
 WHERE lifecycle._tenant_visible(u.tenant)
 GROUP BY o.channel, c.kind, c.enabled, c.disabled_reason, o.status, u.workflow;

-- Messages that used up lifecycle.max_attempts, or whose destination is
-- refused (lifecycle.allow_private_targets); lifecycle_retry_dead()
-- requeues them.
CREATE VIEW lifecycle.dead_letters WITH (security_barrier) AS
SELECT o.id, o.user_id, u.tenant, u.subject, o.channel, o.message,
	   o.attempts, o.last_error, o.created_at, o.last_attempt_at
  FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
 WHERE o.status = 'dead'
   AND lifecycle._tenant_visible(u.tenant);

GRANT SELECT ON lifecycle.comms, lifecycle.dead_letters TO lifecycle_auditor;

-- Outbox retention (policy key "outbox_retention", default 30 days): a
-- message in a final status (sent, dead, cancelled, blocked) is deleted
-- that long after it reached it, and an unrouted message nobody
-- acknowledged that long after its creation or its last lease; so the
-- outbox never grows without bound and keeps no payload longer than
-- needed.  When a message reached its status is the latest of its
-- creation, last attempt, delivery, lease end and, for a message
-- cancelled by an erasure, the erasure.  Messages the sender has in
-- flight are left alone.  At most max_rows (NULL: all) per call: the
-- scheduler calls it hourly and lifecycle_tick() once per call, each in
-- bounded batches; lifecycle_prune_outbox() prunes everything due.
CREATE FUNCTION lifecycle._prune_outbox(max_rows int = NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	now_ timestamptz := @extschema@.lifecycle_now();
	n bigint;
BEGIN
	IF max_rows OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'max_rows must not be negative' USING ERRCODE = '22023';
	END IF;
	-- One cutoff per policy version; versions stored by 0.1.0 have no
	-- outbox_retention and keep the built-in 30 days.
	WITH c AS MATERIALIZED (
		SELECT p.name, p.version,
			   lifecycle._minus(now_, coalesce(p.definition OPERATOR(pg_catalog.->>)
						'outbox_retention', '30 days')::pg_catalog.interval) AS cutoff
		  FROM lifecycle.policies p),
	due AS (
		SELECT o.id
		  FROM lifecycle.outbox o
		  JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) o.user_id
		  JOIN c ON c.name OPERATOR(pg_catalog.=) u.policy
				AND c.version OPERATOR(pg_catalog.=) u.policy_version
		 WHERE o.status IN ('sent', 'dead', 'cancelled', 'blocked', 'unrouted')
		   AND (o.claimed_at IS NULL OR o.status OPERATOR(pg_catalog.=) 'unrouted')
		   AND GREATEST(o.created_at, o.last_attempt_at, o.sent_at, o.next_attempt_at,
						CASE WHEN o.status OPERATOR(pg_catalog.=) 'cancelled'
								  AND u.state OPERATOR(pg_catalog.=) 'erased'
							 THEN u.state_since END)
			   OPERATOR(pg_catalog.<=) c.cutoff
		   AND lifecycle._tenant_visible(u.tenant)
		 LIMIT max_rows
		   FOR UPDATE OF o SKIP LOCKED)
	DELETE FROM lifecycle.outbox o
	 USING due
	 WHERE o.id OPERATOR(pg_catalog.=) due.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- Everything due at once (admins; pg_cron mode needs only lifecycle_tick(),
-- which prunes a batch per call).
CREATE FUNCTION @extschema@.lifecycle_prune_outbox()
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT lifecycle._prune_outbox(NULL) $$;

REVOKE ALL ON FUNCTION lifecycle._prune_outbox(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.lifecycle_prune_outbox() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_prune_outbox() TO lifecycle_admin;

-- Messages for the application (src/api_messages.c).  Without a channel a
-- message is 'unrouted' and the application delivers it itself:
-- lifecycle_claim_messages() leases up to max of them, oldest first (FOR
-- UPDATE SKIP LOCKED), hidden from other claimers until the lease ends (on
-- the lifecycle clock, kept in next_attempt_at), attempts + 1;
-- lifecycle_ack_messages() marks them 'sent'.  An unacknowledged claim
-- comes back after its lease.  Only messages of tenants the acting role
-- may see.  Every transaction that writes an unrouted message sends
-- NOTIFY lifecycle_messages at commit, so a consumer can LISTEN (sent by
-- the writing statement's caller, src/store/store_outbox.c; the index
-- outbox_unrouted is in 00_schema).

CREATE FUNCTION @extschema@.lifecycle_claim_messages(max int = 100,
	lease interval = '5 minutes')
RETURNS TABLE (id bigint, message text, payload jsonb, attempts int)
AS 'MODULE_PATHNAME', 'lifecycle_claim_messages'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_ack_messages(ids bigint[])
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_ack_messages'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_claim_messages(int, interval),
	@extschema@.lifecycle_ack_messages(bigint[]),
	lifecycle._outbox_notify()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_claim_messages(int, interval),
	@extschema@.lifecycle_ack_messages(bigint[])
TO lifecycle_app;
