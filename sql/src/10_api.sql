-- lifecycle: the SQL interface.  Every function is SECURITY DEFINER with a
-- pinned search_path, revoked from PUBLIC, granted to the lifecycle roles.

-- Application (lifecycle_app) ---------------------------------------------

CREATE FUNCTION @extschema@.lifecycle_invite(subject text, email text,
	tenant text = 'default', policy text = 'default', region text = NULL,
	attrs jsonb = '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_invite'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_register(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_register'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_touch(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_touch'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_complete(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_complete'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_restore(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_restore'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_erase(subject text, tenant text = 'default',
	reason text = 'data subject request')
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_erase'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Internal helpers for the SQL-language functions and views.
CREATE FUNCTION lifecycle._check_tenant(tenant text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_check_tenant'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION lifecycle._tenant_visible(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_tenant_visible'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- now() on the lifecycle clock (now() + the lifecycle_travel() offset).
CREATE FUNCTION @extschema@.lifecycle_now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'lifecycle_now'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_status(subject text, tenant text = 'default')
RETURNS TABLE (id bigint, state lifecycle.state, since timestamptz,
	next_event text, next_at timestamptz, held boolean, policy text,
	policy_version int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	RETURN QUERY
		SELECT u.id, u.state, u.state_since, u.next_event, u.next_at, u.held,
			   u.policy, u.policy_version
		  FROM lifecycle.users u
		 WHERE u.tenant = lifecycle_status.tenant
		   AND u.subject = lifecycle_status.subject;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'subject "%" of tenant "%" does not exist', subject, tenant
			USING ERRCODE = '42704', HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
END
$$;

CREATE FUNCTION @extschema@.lifecycle_history(subject text, tenant text = 'default')
RETURNS SETOF lifecycle.history
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	uid bigint;
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	SELECT u.id INTO uid FROM lifecycle.users u
	 WHERE u.tenant = lifecycle_history.tenant AND u.subject = lifecycle_history.subject;
	IF uid IS NULL THEN
		RAISE EXCEPTION 'subject "%" of tenant "%" does not exist', subject, tenant
			USING ERRCODE = '42704', HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
	RETURN QUERY SELECT h.* FROM lifecycle.history h WHERE h.user_id = uid
		ORDER BY h.at, h.id;
END
$$;

-- Administration (lifecycle_admin) ----------------------------------------

CREATE FUNCTION lifecycle._define_policy(name text, definition jsonb, search_schemas name[])
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_define_policy_internal'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Not SECURITY DEFINER on purpose: it passes the caller's search_path so
-- that an unqualified hook name resolves as the caller would resolve it.
-- Every name in its body is qualified.
CREATE FUNCTION @extschema@.lifecycle_define_policy(name text, definition jsonb)
RETURNS int
LANGUAGE sql VOLATILE
AS $$ SELECT lifecycle._define_policy($1, $2, pg_catalog.current_schemas(false)) $$;

CREATE FUNCTION @extschema@.lifecycle_archive(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_archive'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_hold(subject text, tenant text, reason text,
	until timestamptz = NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_hold'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_release(subject text, tenant text = 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_release'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_tick(max_transitions int = NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_tick'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_travel(by interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'lifecycle_travel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The pure state machine, for tests: what would event do in state?
CREATE FUNCTION lifecycle._machine_step(state text, event text, held boolean,
	policy text = 'default',
	OUT allowed boolean, OUT noop boolean, OUT to_state text, OUT message text,
	OUT hook text, OUT erase boolean, OUT next_event text, OUT hint text)
AS 'MODULE_PATHNAME', 'lifecycle_machine_step'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION lifecycle._worker_stats(
	OUT worker text, OUT pid int, OUT started timestamptz, OUT last_wake timestamptz,
	OUT batches bigint, OUT done bigint, OUT failed bigint, OUT errors_total bigint,
	OUT last_error text, OUT last_error_at timestamptz, OUT lag interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'lifecycle_worker_stats'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Graphviz DOT of the policy's state graph with live counts per state.
CREATE FUNCTION @extschema@.lifecycle_graph(policy text = 'default')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	def jsonb;
	n jsonb;
	out text;
	st text;
BEGIN
	IF policy IS NULL THEN
		RAISE EXCEPTION 'policy must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT p.definition INTO def FROM lifecycle.policies p
	 WHERE p.name = lifecycle_graph.policy ORDER BY p.version DESC LIMIT 1;
	IF def IS NULL THEN
		RAISE EXCEPTION 'policy "%" does not exist', policy USING ERRCODE = '42704';
	END IF;
	-- Group by tenant first: the visibility check runs once per tenant.
	WITH g AS MATERIALIZED (
		SELECT u.state::text AS s, u.tenant AS t, count(*) AS c FROM lifecycle.users u
		 WHERE u.policy = lifecycle_graph.policy
		 GROUP BY u.state, u.tenant)
	SELECT coalesce(jsonb_object_agg(x.s, x.c), '{}') INTO n FROM (
		SELECT g.s, sum(g.c) AS c FROM g WHERE lifecycle._tenant_visible(g.t)
		 GROUP BY g.s) x;
	-- DOT string: escape backslashes and double quotes of the name.
	out := format(E'digraph lifecycle {\n  label="%s";\n  rankdir=LR;\n  node [shape=box, style=rounded];\n',
				  replace(replace('policy ' || policy, E'\\', E'\\\\'), '"', E'\\"'));
	FOREACH st IN ARRAY enum_range(NULL::lifecycle.state)::text[] LOOP
		out := out || format(E'  %s [label="%s\\n%s"];\n', st, st, coalesce(n ->> st, '0'));
	END LOOP;
	-- Every edge of the transition table; timers carry the policy's
	-- intervals, reminders are self-loops, admin and erasure edges dashed.
	out := out
		|| format(E'  invited -> invited [label="reminders %s"];\n',
				  coalesce((SELECT string_agg(r, ', ') FROM jsonb_array_elements_text(def -> 'invite_reminders') r), 'none'))
		|| E'  invited -> active [label="register"];\n'
		|| format(E'  invited -> expired [label="after %s"];\n', def ->> 'invite_expires_after')
		|| format(E'  active -> dormant [label="idle %s, notice"];\n', def ->> 'dormant_after')
		|| E'  active -> completed [label="complete, notice"];\n'
		|| E'  dormant -> completed [label="complete"];\n'
		|| E'  dormant -> active [label="touch, restore"];\n'
		|| E'  completed -> active [label="touch, restore"];\n'
		|| format(E'  dormant -> dormant [label="reminders %s before"];\n',
				  coalesce((SELECT string_agg(r, ', ') FROM jsonb_array_elements_text(def -> 'archive_reminders') r), 'none'))
		|| format(E'  completed -> completed [label="reminders %s before"];\n',
				  coalesce((SELECT string_agg(r, ', ') FROM jsonb_array_elements_text(def -> 'archive_reminders') r), 'none'))
		|| format(E'  dormant -> archived [label="after %s"];\n', def ->> 'archive_after')
		|| format(E'  completed -> archived [label="after %s"];\n', def ->> 'archive_after')
		|| E'  active -> archived [label="archive (admin)", style=dashed];\n'
		|| E'  invited -> archived [label="archive (admin)", style=dashed];\n'
		|| E'  archived -> active [label="restore"];\n'
		|| format(E'  archived -> erased [label="after %s"];\n', def ->> 'erase_after')
		|| format(E'  expired -> erased [label="after %s"];\n', def ->> 'expired_erase_after')
		|| E'  expired -> invited [label="invite"];\n'
		|| E'  active -> erased [label="erase (any state)", style=dashed];\n'
		|| E'}\n';
	RETURN out;
END
$$;
