-- lifecycle 0.1.0 -> 0.2.0
--
-- Every schema change of 0.2.0 lands here as it lands in sql/src/, so that
-- ALTER EXTENSION lifecycle UPDATE gives the same schema as a fresh
-- install (test/t/500_upgrade.pl compares pg_dump --schema-only of both).
-- The last 0.1.0 commit is 220c1ab38be7a866411ebe06866c6dd1be674bb7.

\echo Use "ALTER EXTENSION lifecycle UPDATE TO '0.2.0'" to load this file. \quit

-- security (issue 10): hooks are bound to their function by OID when a
-- policy version is defined.  Versions defined by 0.1.0 are bound here to
-- the function their stored (qualified) name resolves to now; a hook whose
-- function no longer exists stays NULL and fails visibly when called.
-- First of all: later parts run C code that loads policies (with them).
ALTER TABLE lifecycle.policies ADD COLUMN archive_hook regprocedure;
ALTER TABLE lifecycle.policies ADD COLUMN restore_hook regprocedure;
ALTER TABLE lifecycle.policies ADD COLUMN erase_hook regprocedure;
UPDATE lifecycle.policies p
   SET archive_hook = pg_catalog.to_regprocedure((p.definition -> 'hooks' ->> 'archive') OPERATOR(pg_catalog.||) '(text, text)'),
	   restore_hook = pg_catalog.to_regprocedure((p.definition -> 'hooks' ->> 'restore') OPERATOR(pg_catalog.||) '(text, text)'),
	   erase_hook = pg_catalog.to_regprocedure((p.definition -> 'hooks' ->> 'erase') OPERATOR(pg_catalog.||) '(text, text)');

-- security (issue 11.3): the acting role and tenant limits are decided in
-- C (src/acting.c) for the SQL helpers too.
CREATE OR REPLACE FUNCTION lifecycle._actor()
RETURNS name
AS 'MODULE_PATHNAME', 'lifecycle_actor'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION lifecycle._check_unlimited(what text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_check_unlimited'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- compliance: the graph as one table (src/machine.c), retention deadlines
-- (docs/COMPLIANCE.md) ----------------------------------------------------

-- Timers have names of their own: the archive and erase timers are
-- archive_due and erase_due (the calls stay archive and erase).
UPDATE lifecycle.users SET next_event = 'archive_due' WHERE next_event = 'archive';
UPDATE lifecycle.users SET next_event = 'erase_due' WHERE next_event = 'erase';

ALTER TABLE lifecycle.users ADD COLUMN state_due_at timestamptz,
	ADD COLUMN deadline_at timestamptz, ADD COLUMN deadline_event text;
CREATE INDEX users_deadline_at ON lifecycle.users (deadline_at)
	WHERE deadline_at IS NOT NULL AND NOT held;
CREATE INDEX users_hold_until ON lifecycle.users (hold_until) WHERE held;

-- When entering the current state was due: for archived and expired users
-- the due_at of the transition into it (retention counts from there),
-- else when it was entered.
UPDATE lifecycle.users u
   SET state_due_at = coalesce(
		(SELECT coalesce(h.due_at, h.at) FROM lifecycle.history h
		  WHERE h.user_id = u.id AND h.to_state = u.state
			AND h.from_state IS DISTINCT FROM u.state
		  ORDER BY h.at DESC, h.id DESC LIMIT 1), u.state_since)
 WHERE u.state IN ('archived', 'expired');
UPDATE lifecycle.users SET state_due_at = state_since WHERE state_due_at IS NULL;

-- The transition table of src/machine.c, the only copy of the graph, with
-- the intervals of a policy version (the latest when version is NULL).
CREATE FUNCTION lifecycle.transitions(policy text = 'default', version int = NULL)
RETURNS TABLE (from_state text, event text, kind text, role text,
	to_state text, effect text, message text, hook text, erases boolean,
	stopped_by_hold boolean, anchor text, interval_key text,
	"interval" interval, reminders interval[], reminders_before_deadline boolean,
	deadline_event text, hint text)
AS 'MODULE_PATHNAME', 'lifecycle_transitions'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Every user's retention deadline again from src/machine.c (the upgrade
-- from 0.1.0 calls it; transitions keep the columns current).
CREATE FUNCTION lifecycle._refresh_deadlines()
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_refresh_deadlines'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Graphviz DOT of the policy's state graph with live counts per state.
-- The edges are lifecycle.transitions(): every transition, reminder
-- self-loops, admin and erasure calls dashed (holds are orthogonal to
-- state and not drawn).
CREATE OR REPLACE FUNCTION @extschema@.lifecycle_graph(policy text = 'default')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n jsonb;
	out text;
	st text;
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
	FOREACH st IN ARRAY enum_range(NULL::lifecycle.state)::text[] LOOP
		out := out || format(E'  %s [label="%s\\n%s"];\n', st, st, coalesce(n ->> st, '0'));
	END LOOP;
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
				  FROM lifecycle.transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
						from_state, event, kind, role, to_state, effect, message, hook,
						erases, stopped_by_hold, anchor, interval_key, "interval",
						reminders, reminders_before_deadline, deadline_event, hint, ord)
				 WHERE x.effect IN ('transition', 'reminder', 'touch')
				   AND x.from_state <> 'none'
				   AND coalesce(cardinality(x.reminders), 1) > 0) t
		 GROUP BY t.from_state, t.to_state, t.dashed
		 ORDER BY min(t.ord)
	LOOP
		out := out || format(E'  %s -> %s [label="%s"%s];\n', e.from_state, e.to_state,
							 e.label, CASE WHEN e.dashed THEN ', style=dashed' ELSE '' END);
	END LOOP;
	RETURN out || E'}\n';
END
$$;

DROP FUNCTION @extschema@.lifecycle_status(text, text);
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
		   AND u.subject = lifecycle_status.subject;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'subject "%" of tenant "%" does not exist', subject, tenant
			USING ERRCODE = '42704', HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
END
$$;

REVOKE ALL ON FUNCTION lifecycle.transitions(text, int), lifecycle._refresh_deadlines(),
	@extschema@.lifecycle_status(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle.transitions(text, int) TO lifecycle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_status(text, text) TO lifecycle_app, lifecycle_auditor;

-- Every user's deadline, computed in C from its policy version (the same
-- code every transition runs).
SELECT lifecycle._refresh_deadlines();

-- Per tenant, policy and state: how many, since when, what falls due next,
-- the earliest retention deadline and how many are past it (violations).
CREATE OR REPLACE VIEW lifecycle.retention_report AS
SELECT g.tenant, g.policy, g.state, g.users, g.oldest_since, g.next_due,
	   g.held, g.next_deadline, g.violations
  FROM (SELECT u.tenant, u.policy, u.state,
			   count(*) AS users,
			   min(u.state_since) AS oldest_since,
			   min(u.next_at) FILTER (WHERE NOT (u.held AND (u.hold_until IS NULL
					OR u.hold_until > (SELECT @extschema@.lifecycle_now())))) AS next_due,
			   count(*) FILTER (WHERE u.held AND (u.hold_until IS NULL
					OR u.hold_until > (SELECT @extschema@.lifecycle_now()))) AS held,
			   min(u.deadline_at) AS next_deadline,
			   count(*) FILTER (WHERE u.deadline_at < (SELECT @extschema@.lifecycle_now()) - interval '1 minute'
					AND NOT (u.held AND (u.hold_until IS NULL
					OR u.hold_until > (SELECT @extschema@.lifecycle_now())))) AS violations
		  FROM lifecycle.users u
		 GROUP BY u.tenant, u.policy, u.state
		OFFSET 0) g
 WHERE lifecycle._tenant_visible(g.tenant);

-- Timers due but not fired (worker down or behind, or a transition that
-- keeps failing: see last_error).  A lapsed hold's hold_lapse is one.
CREATE OR REPLACE VIEW lifecycle.overdue AS
SELECT u.id, u.tenant, u.subject, u.state, u.next_event, u.next_at AS due_at,
	   @extschema@.lifecycle_now() - u.next_at AS overdue_by,
	   u.retries, u.retry_at, u.last_error
  FROM lifecycle.users u
 WHERE u.next_at <= @extschema@.lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now()))
   AND lifecycle._tenant_visible(u.tenant);

DROP VIEW lifecycle.violations;
-- Subjects kept past their policy: the retention deadline of their state
-- (users.deadline_at, whatever reminder is pending) passed more than a
-- minute ago, and no hold in force.  Empty while the worker is healthy.
-- Reads two partial indexes (a BitmapOr): users_deadline_at for users not
-- on hold, users_hold_until for held users whose hold has lapsed.
CREATE VIEW lifecycle.violations AS
SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
	   u.deadline_event, u.deadline_at,
	   @extschema@.lifecycle_now() - u.deadline_at AS overdue_by,
	   u.next_event, u.next_at, u.last_error
  FROM lifecycle.users u
 WHERE ((NOT u.held
		 AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute')
		OR (u.held AND u.hold_until <= @extschema@.lifecycle_now()
			AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'))
   AND lifecycle._tenant_visible(u.tenant);

ALTER VIEW lifecycle.violations SET (security_barrier = true);
GRANT SELECT ON lifecycle.violations TO lifecycle_auditor;

-- Legal holds in force (a lapsed hold is not, even before its hold_lapse
-- is written).
CREATE OR REPLACE VIEW lifecycle.holds AS
SELECT u.id, u.tenant, u.subject, u.state, u.hold_reason AS reason,
	   u.hold_until AS until,
	   (SELECT max(h.at) FROM lifecycle.history h
		 WHERE h.user_id = u.id AND h.event = 'hold') AS held_since,
	   (SELECT h.actor FROM lifecycle.history h
		 WHERE h.user_id = u.id AND h.event = 'hold'
		 ORDER BY h.at DESC, h.id DESC LIMIT 1) AS held_by
  FROM lifecycle.users u
 WHERE u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now())
   AND lifecycle._tenant_visible(u.tenant);

CREATE OR REPLACE VIEW lifecycle.metrics AS
WITH states AS MATERIALIZED (
	SELECT u.tenant, u.policy, u.state::text AS state,
		   count(*) AS users,
		   count(*) FILTER (WHERE u.held AND (u.hold_until IS NULL
			   OR u.hold_until > @extschema@.lifecycle_now())) AS held
	  FROM lifecycle.users u
	 GROUP BY u.tenant, u.policy, u.state
), visible_states AS MATERIALIZED (
	SELECT s.* FROM states s WHERE lifecycle._tenant_visible(s.tenant)
), limited AS MATERIALIZED (
	-- Is the acting role kept from some tenant?  Then history is counted
	-- per tenant (a join with users); else with one pass over history.
	SELECT EXISTS (SELECT 1 FROM states s
					WHERE NOT lifecycle._tenant_visible(s.tenant)) AS yes
), transitions AS MATERIALIZED (
	SELECT h.event, count(*) AS n
	  FROM lifecycle.history h
	 WHERE NOT (SELECT l.yes FROM limited l)
	 GROUP BY h.event
	UNION ALL
	SELECT t.event, sum(t.n)
	  FROM (SELECT h.event, u.tenant, count(*) AS n
			  FROM lifecycle.history h
			  JOIN lifecycle.users u ON u.id = h.user_id
			 WHERE (SELECT l.yes FROM limited l)
			 GROUP BY h.event, u.tenant) t
	 WHERE lifecycle._tenant_visible(t.tenant)
	 GROUP BY t.event
), due AS MATERIALIZED (
	SELECT u.tenant, count(*) AS overdue, min(u.next_at) AS oldest
	  FROM lifecycle.users u
	 WHERE u.next_at <= @extschema@.lifecycle_now()
	   AND NOT (u.held AND (u.hold_until IS NULL
			OR u.hold_until > @extschema@.lifecycle_now()))
	 GROUP BY u.tenant
), visible_due AS MATERIALIZED (
	SELECT d.* FROM due d WHERE lifecycle._tenant_visible(d.tenant)
), violating AS MATERIALIZED (
	-- The set of lifecycle.violations, from the same two indexes.
	SELECT u.tenant, count(*) AS violations
	  FROM lifecycle.users u
	 WHERE (NOT u.held
			AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute')
		OR (u.held AND u.hold_until <= @extschema@.lifecycle_now()
			AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute')
	 GROUP BY u.tenant
), outbox_by_tenant AS MATERIALIZED (
	SELECT u.tenant, coalesce(o.channel, '') AS channel, o.status,
		   count(*) AS messages
	  FROM lifecycle.outbox o
	  JOIN lifecycle.users u ON u.id = o.user_id
	 GROUP BY 1, 2, 3
), outbox AS MATERIALIZED (
	SELECT o.channel, o.status, sum(o.messages) AS messages
	  FROM outbox_by_tenant o
	 WHERE lifecycle._tenant_visible(o.tenant)
	 GROUP BY 1, 2
), workers AS MATERIALIZED (
	SELECT w.* FROM lifecycle._worker_stats() w
)
SELECT 'lifecycle_state_users'::text AS name,
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state) AS labels,
	   s.users::float8 AS value
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_state_held',
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state),
	   s.held::float8
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_transitions_total',
	   pg_catalog.jsonb_build_object('event', t.event),
	   t.n::float8
  FROM transitions t
UNION ALL
SELECT 'lifecycle_timers_overdue', '{}'::jsonb,
	   coalesce(sum(d.overdue), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_lag_seconds', '{}'::jsonb,
	   coalesce(extract(epoch FROM @extschema@.lifecycle_now() - min(d.oldest)), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_violations', '{}'::jsonb,
	   coalesce(sum(v.violations), 0)::float8
  FROM violating v WHERE lifecycle._tenant_visible(v.tenant)
UNION ALL
SELECT 'lifecycle_outbox_messages',
	   pg_catalog.jsonb_build_object('channel', o.channel, 'status', o.status),
	   o.messages::float8
  FROM outbox o
UNION ALL
SELECT 'lifecycle_dead_letters',
	   pg_catalog.jsonb_build_object('channel', o.channel),
	   o.messages::float8
  FROM outbox o
 WHERE o.status = 'dead'
UNION ALL
SELECT 'lifecycle_worker_up', pg_catalog.jsonb_build_object('worker', w.worker),
	   (w.pid IS NOT NULL)::int::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_pid', pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(w.pid, 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_batches_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.batches::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_transitions_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.done::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_failed_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.failed::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_errors_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.errors_total::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_lag_seconds',
	   pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(extract(epoch FROM w.lag), 0)::float8
  FROM workers w;


-- CREATE OR REPLACE VIEW resets a view's options: the tenant views keep
-- their security barrier (sql/src/60_tenants.sql).
ALTER VIEW lifecycle.retention_report SET (security_barrier = true);
ALTER VIEW lifecycle.overdue SET (security_barrier = true);
ALTER VIEW lifecycle.holds SET (security_barrier = true);

-- userbase (issue 12): adopt, update, export, migrate, forecast
-- (sql/src/75_userbase.sql).
-- Application (lifecycle_app) ---------------------------------------------

-- Reads accounts with the caller's privileges (row-level security
-- applies).
CREATE FUNCTION @extschema@.lifecycle_adopt(accounts regclass,
	tenant text = 'default', policy text = 'default', spread interval = NULL)
RETURNS TABLE (adopted bigint, skipped bigint)
AS 'MODULE_PATHNAME', 'lifecycle_adopt'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The per-row check of the adoption statement, which runs as the caller
-- (pure C, runs no SQL: no search_path to pin).
CREATE FUNCTION lifecycle._adopt_problem(subject text, email text,
	region text, attrs jsonb, last_seen timestamptz)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_adopt_problem'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.lifecycle_update(subject text, tenant text = 'default',
	email text = NULL, attrs jsonb = NULL, region text = NULL, policy text = NULL)
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_update'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_export(subject text, tenant text = 'default')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'lifecycle_export'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Administration (lifecycle_admin) ----------------------------------------

CREATE FUNCTION @extschema@.lifecycle_migrate(policy text, to_version int = NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_migrate'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The machine's next timer (what 0) or retention deadline (what 1) for
-- one row of lifecycle_migrate()'s UPDATE (pure C, runs no SQL: no
-- search_path to pin; granted to nobody).
CREATE FUNCTION lifecycle._rearm_at(what int, policy text, version int,
	state text, since timestamptz, due_at timestamptz, last_seen timestamptz,
	step int, held boolean, hold_until timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'lifecycle_rearm_at'
LANGUAGE C STABLE;

CREATE FUNCTION lifecycle._rearm_event(what int, policy text, version int,
	state text, since timestamptz, due_at timestamptz, last_seen timestamptz,
	step int, held boolean, hold_until timestamptz)
RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_rearm_event'
LANGUAGE C STABLE;

-- Auditors and admins ------------------------------------------------------

CREATE FUNCTION lifecycle._forecast(horizon interval, policy text, tenant text,
	definition jsonb, search_schemas name[])
RETURNS TABLE (day date, event text, users bigint)
AS 'MODULE_PATHNAME', 'lifecycle_forecast_internal'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Not SECURITY DEFINER on purpose, as lifecycle_define_policy(): a hook
-- named in a proposed definition resolves as the caller would resolve it.
CREATE FUNCTION @extschema@.lifecycle_forecast(horizon interval = '90 days',
	policy text = NULL, tenant text = NULL, definition jsonb = NULL)
RETURNS TABLE (day date, event text, users bigint)
LANGUAGE sql STABLE
AS $$ SELECT f.day, f.event, f.users
	FROM lifecycle._forecast($1, $2, $3, $4, pg_catalog.current_schemas(false)) AS f $$;

REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_adopt(regclass, text, text, interval),
	lifecycle._adopt_problem(text, text, text, jsonb, timestamptz),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text),
	@extschema@.lifecycle_export(text, text),
	@extschema@.lifecycle_migrate(text, int),
	lifecycle._rearm_at(int, text, int, text, timestamptz, timestamptz, timestamptz, int, boolean, timestamptz),
	lifecycle._rearm_event(int, text, int, text, timestamptz, timestamptz, timestamptz, int, boolean, timestamptz),
	lifecycle._forecast(interval, text, text, jsonb, name[]),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_adopt(regclass, text, text, interval),
	lifecycle._adopt_problem(text, text, text, jsonb, timestamptz),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text),
	@extschema@.lifecycle_export(text, text)
TO lifecycle_app;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_migrate(text, int) TO lifecycle_admin;
GRANT EXECUTE ON FUNCTION
	lifecycle._forecast(interval, text, text, jsonb, name[]),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb)
TO lifecycle_auditor;

-- security (issue 10): lifecycle_status() and lifecycle_history() name
-- the subject argument in their 42704, not its value.
CREATE OR REPLACE FUNCTION @extschema@.lifecycle_status(subject text, tenant text = 'default')
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
		   AND u.subject = lifecycle_status.subject;
	IF NOT FOUND THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.lifecycle_history(subject text, tenant text = 'default')
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
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
	RETURN QUERY SELECT h.* FROM lifecycle.history h WHERE h.user_id = uid
		ORDER BY h.at, h.id;
END
$$;

-- messages (issue 14.5): outbox retention, lifecycle._prune_outbox() and
-- lifecycle_prune_outbox() (sql/src/80_messages.sql).
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
								  AND u.state OPERATOR(pg_catalog.=) 'erased'::lifecycle.state
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

-- messages (issue 12.5): lifecycle_claim_messages(), lifecycle_ack_messages(),
-- NOTIFY lifecycle_messages (sql/src/80_messages.sql).
-- Messages for the application (src/api_messages.c).  Without a channel a
-- message is 'unrouted' and the application delivers it itself:
-- lifecycle_claim_messages() leases up to max of them, oldest first (FOR
-- UPDATE SKIP LOCKED), hidden from other claimers until the lease ends (on
-- the lifecycle clock, kept in next_attempt_at), attempts + 1;
-- lifecycle_ack_messages() marks them 'sent'.  An unacknowledged claim
-- comes back after its lease.  Only messages of tenants the acting role
-- may see.  Every transaction that writes an unrouted message sends
-- NOTIFY lifecycle_messages at commit, so a consumer can LISTEN.
CREATE INDEX outbox_unrouted ON lifecycle.outbox (id) WHERE status = 'unrouted';

CREATE FUNCTION @extschema@.lifecycle_claim_messages(max int = 100,
	lease interval = '5 minutes')
RETURNS TABLE (id bigint, message text, payload jsonb, attempts int)
AS 'MODULE_PATHNAME', 'lifecycle_claim_messages'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_ack_messages(ids bigint[])
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_ack_messages'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION lifecycle._outbox_notify()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_outbox_notify'
LANGUAGE C;

CREATE TRIGGER outbox_notify BEFORE INSERT ON lifecycle.outbox
	FOR EACH ROW WHEN (NEW.status = 'unrouted')
	EXECUTE FUNCTION lifecycle._outbox_notify();

REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_claim_messages(int, interval),
	@extschema@.lifecycle_ack_messages(bigint[]),
	lifecycle._outbox_notify()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_claim_messages(int, interval),
	@extschema@.lifecycle_ack_messages(bigint[])
TO lifecycle_app;

-- messages (issue 14.5): policy versions stored by 0.1.0 have no
-- "outbox_retention"; they get the built-in 30 days they were pruned with
-- anyway, so every stored definition is complete, as in a fresh install.
UPDATE lifecycle.policies
   SET definition = definition OPERATOR(pg_catalog.||) '{"outbox_retention": "30 days"}'::jsonb
 WHERE NOT definition OPERATOR(pg_catalog.?) 'outbox_retention';

