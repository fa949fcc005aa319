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

-- Internal helper for the SQL-language functions (lifecycle._tenant_visible(),
-- which the views and row-level security use, is in 00_schema.sql).
CREATE FUNCTION lifecycle._check_tenant(tenant text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_check_tenant'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- now() on the lifecycle clock (now() + the lifecycle_travel() offset).
CREATE FUNCTION @extschema@.lifecycle_now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'lifecycle_now'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_status(subject text, tenant text = 'default')
RETURNS TABLE (id bigint, state lifecycle.state, since timestamptz,
	next_event text, next_at timestamptz, held boolean, policy text,
	policy_version int, deadline_event text, deadline_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	RETURN QUERY
		SELECT u.id, u.state, u.state_since, u.next_event, u.next_at,
			   -- a hold whose until has passed is lapsed, written or not
			   u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now()),
			   u.policy, u.policy_version, u.deadline_event, u.deadline_at
		  FROM lifecycle.users u
		 WHERE u.tenant = lifecycle_status.tenant
		   AND u.subject = lifecycle_status.subject AND u.workflow = 'user' AND u.key = '';
	IF NOT FOUND THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION USING ERRCODE = '42704',
			-- (0.2.0's line numbers kept.)  A subject that runs other
			-- workflows only has no user lifecycle to show: the HINT names
			-- lifecycle_instances(), which lists what it runs.
			MESSAGE = CASE WHEN EXISTS (SELECT 1 FROM lifecycle.users u
					WHERE u.tenant = lifecycle_status.tenant AND u.subject = lifecycle_status.subject)
				THEN 'subject has no user lifecycle' ELSE 'subject does not exist' END,
			DETAIL = CASE WHEN EXISTS (SELECT 1 FROM lifecycle.users u
					WHERE u.tenant = lifecycle_status.tenant AND u.subject = lifecycle_status.subject)
				THEN pg_catalog.format('Tenant "%s" has a live subject of that name in other workflows only.', tenant)
				ELSE pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant) END,
			HINT = CASE WHEN EXISTS (SELECT 1 FROM lifecycle.users u
					WHERE u.tenant = lifecycle_status.tenant AND u.subject = lifecycle_status.subject)
				THEN 'Use lifecycle_instances() to list its instances.'
				ELSE 'Use lifecycle_invite() to start a lifecycle.' END;
	END IF;
END
$$;

CREATE FUNCTION @extschema@.lifecycle_history(subject text, tenant text = 'default')
RETURNS SETOF lifecycle.history
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	live boolean;
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	SELECT EXISTS (SELECT 1 FROM lifecycle.users u
	 WHERE u.tenant = lifecycle_history.tenant AND u.subject = lifecycle_history.subject)
	  INTO live;	-- a live instance of the subject, of any workflow
	IF NOT live THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
	-- Every live instance of the subject, of every workflow (user_id names
	-- the instance), oldest first.
	RETURN QUERY SELECT h.* FROM lifecycle.users u
		JOIN lifecycle.history h ON h.user_id = u.id
	   WHERE u.tenant = lifecycle_history.tenant AND u.subject = lifecycle_history.subject
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

-- The OpenTelemetry exporter's counters, from shared memory (0.3.0).
CREATE FUNCTION lifecycle._otel_stats(
	OUT spans_exported bigint, OUT spans_dropped bigint,
	OUT failed_requests bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'lifecycle_otel_stats'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- A workflow's compiled graph as rows (src/api/graph.c), the version given
-- (the latest when NULL) with the numbers of the workflow's own policy
-- (its same-named one, "default" for user) or its defaults.  A name that
-- is no workflow's is taken as a policy's, as in 0.2.0 (version: the
-- policy's).
CREATE FUNCTION lifecycle.transitions(workflow text = 'user', version int = NULL)
RETURNS TABLE (from_state text, event text, kind text, role text,
	to_state text, effect text, message text, hook text, erases boolean,
	stopped_by_hold boolean, anchor text, interval_key text,
	"interval" interval, reminders interval[], reminders_before_deadline boolean,
	deadline_event text, hint text)
AS 'MODULE_PATHNAME', 'lifecycle_transitions'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The same rows for the graph a policy version runs, with its numbers
-- (lifecycle_graph() draws them).
CREATE FUNCTION lifecycle._policy_transitions(policy text, version int = NULL)
RETURNS TABLE (from_state text, event text, kind text, role text,
	to_state text, effect text, message text, hook text, erases boolean,
	stopped_by_hold boolean, anchor text, interval_key text,
	"interval" interval, reminders interval[], reminders_before_deadline boolean,
	deadline_event text, hint text)
AS 'MODULE_PATHNAME', 'lifecycle_policy_transitions'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Every user's retention deadline again from src/machine.c (the upgrade
-- from 0.1.0 calls it; transitions keep the columns current).
CREATE FUNCTION lifecycle._refresh_deadlines()
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_refresh_deadlines'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Graphviz DOT of the policy's state graph (of any workflow) with live
-- counts per state.  The edges are lifecycle._policy_transitions(): every
-- transition, reminder self-loops, admin and erasure calls dashed (holds
-- are orthogonal to state and not drawn), for any workflow's policy.
CREATE FUNCTION @extschema@.lifecycle_graph(policy text = 'default')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n jsonb;
	out text;
	st record;
	e record;
BEGIN
	IF policy IS NULL THEN
		RAISE EXCEPTION 'policy must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM lifecycle.policies p WHERE p.name = lifecycle_graph.policy) THEN
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
	-- The states in the order of their distance from the start (then of
	-- the edges that first enter them), "erased" last; a state named like
	-- a DOT keyword is quoted.
	FOR st IN
		WITH RECURSIVE ge AS MATERIALIZED (
			SELECT x.from_state, x.to_state, x.ord
			  FROM lifecycle._policy_transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
					from_state, event, kind, role, to_state, effect, message, hook,
					erases, stopped_by_hold, anchor, interval_key, "interval",
					reminders, reminders_before_deadline, deadline_event, hint, ord)
			 WHERE x.to_state <> 'erased'),
		r(state, depth) AS (
			SELECT ge.to_state, 1 FROM ge WHERE ge.from_state = 'none'
			UNION
			SELECT ge.to_state, r.depth + 1 FROM r JOIN ge ON ge.from_state = r.state
			 WHERE r.depth < 70)
		SELECT r.state AS s,
			   CASE WHEN r.state IN ('node', 'edge', 'graph', 'digraph', 'subgraph', 'strict')
					THEN '"' || r.state || '"' ELSE r.state END AS id
		  FROM r GROUP BY r.state
		 ORDER BY min(r.depth), (SELECT min(ge.ord) FROM ge WHERE ge.to_state = r.state)
	LOOP
		out := out || format(E'  %s [label="%s\\n%s"];\n', st.id, st.s,
							 coalesce(n ->> st.s, '0'));
	END LOOP;
	out := out || format(E'  erased [label="erased\\n%s"];\n', coalesce(n ->> 'erased', '0'));
	FOR e IN
		SELECT t.from_state, t.to_state, t.dashed,
			   string_agg(t.label, ', ' ORDER BY t.ord) AS label
		  FROM (SELECT x.from_state, x.to_state, x.ord,
					   x.kind = 'call' AND (x.role = 'admin' OR x.erases) AS dashed,
					   CASE WHEN x."interval" IS NOT NULL
							THEN format('%s after %s', x.event, x."interval")
							WHEN x.reminders IS NOT NULL
							THEN format('%s %s%s', x.event, array_to_string(x.reminders, ', '),
										CASE WHEN x.reminders_before_deadline THEN ' before' ELSE '' END)
							WHEN x.role = 'admin' THEN x.event || ' (admin)'
							ELSE x.event END AS label
				  FROM lifecycle._policy_transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
						from_state, event, kind, role, to_state, effect, message, hook,
						erases, stopped_by_hold, anchor, interval_key, "interval",
						reminders, reminders_before_deadline, deadline_event, hint, ord)
				 WHERE x.effect IN ('transition', 'reminder', 'touch')
				   AND x.from_state <> 'none'
				   AND coalesce(cardinality(x.reminders), 1) > 0) t
		 GROUP BY t.from_state, t.to_state, t.dashed
		 ORDER BY min(t.ord)
	LOOP
		out := out || format(E'  %s -> %s [label="%s"%s];\n',
							 CASE WHEN e.from_state IN ('node', 'edge', 'graph', 'digraph', 'subgraph', 'strict')
								  THEN '"' || e.from_state || '"' ELSE e.from_state END,
							 CASE WHEN e.to_state IN ('node', 'edge', 'graph', 'digraph', 'subgraph', 'strict')
								  THEN '"' || e.to_state || '"' ELSE e.to_state END,
							 e.label, CASE WHEN e.dashed THEN ', style=dashed' ELSE '' END);
	END LOOP;
	RETURN out || E'}\n';
END
$$;
