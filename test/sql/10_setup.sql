-- Helpers for the regression tests that follow (schema rt, not part of the
-- extension).  Every output they produce is free of timestamps and ids.
SET client_min_messages = warning;
CREATE SCHEMA rt;
RESET client_min_messages;

-- The id of a subject (NULL once erased: the subject is gone).
CREATE FUNCTION rt.uid(p_subject text, p_tenant text) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT id FROM lifecycle.users WHERE tenant = p_tenant AND subject = p_subject
$$;

-- A user's history, oldest first, without times.
CREATE FUNCTION rt.hist(p_id bigint)
RETURNS TABLE (event text, from_state lifecycle.state, to_state lifecycle.state,
			   actor text, timer boolean)
LANGUAGE sql STABLE AS $$
	SELECT h.event, h.from_state, h.to_state, h.actor, h.due_at IS NOT NULL
	  FROM lifecycle.history h WHERE h.user_id = p_id ORDER BY h.at, h.id
$$;

-- A user's outbox, oldest first, without times.
CREATE FUNCTION rt.msgs(p_id bigint)
RETURNS TABLE (message text, channel text, status text, state text,
			   email text, has_archive_at boolean)
LANGUAGE sql STABLE AS $$
	SELECT o.message, o.channel, o.status, o.payload ->> 'state',
		   o.payload ->> 'email', o.payload ->> 'archive_at' IS NOT NULL
	  FROM lifecycle.outbox o WHERE o.user_id = p_id ORDER BY o.id
$$;

-- Move the lifecycle clock; returns how far it moved (always "by").
CREATE FUNCTION rt.travel(by interval) RETURNS interval
LANGUAGE plpgsql AS $$
DECLARE
	before timestamptz := lifecycle_now();
BEGIN
	RETURN lifecycle_travel(by) - before;
END
$$;

-- Erase every remaining user of a tenant (holds released first), so that
-- the next test file starts with no pending timers.  Returns how many.
CREATE FUNCTION rt.cleanup(p_tenant text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	n int := 0;
BEGIN
	FOR r IN SELECT subject, held FROM lifecycle.users
			  WHERE tenant = p_tenant AND state <> 'erased' ORDER BY id
	LOOP
		IF r.held THEN
			PERFORM lifecycle_release(r.subject, p_tenant);
		END IF;
		PERFORM lifecycle_erase(r.subject, p_tenant, 'test cleanup');
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;

-- Nothing is due at the start of the suite.
SELECT count(*) AS users_with_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
