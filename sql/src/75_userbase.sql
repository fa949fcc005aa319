-- lifecycle: the user base (0.2.0).  Adopt existing accounts, change and
-- export a user, move a policy's users to a new version, forecast what the
-- timers will do (src/adopt.c, update.c, export.c, forecast.c; their SQL
-- in src/store_bulk.c).

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

-- Move the running instances of a workflow's older versions to to_version
-- (NULL: the latest), states mapped by name or by state_map; their policy
-- to its version naming to_version (defined if missing).  src/api/migrate.c.
CREATE FUNCTION @extschema@.lifecycle_migrate_workflow(workflow text,
	to_version int = NULL, state_map jsonb = '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_migrate_workflow'
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
	definition jsonb, search_schemas name[], workflow text,
	workflow_definition jsonb, state_map jsonb)
RETURNS TABLE (day date, event text, users bigint, workflow text)
AS 'MODULE_PATHNAME', 'lifecycle_forecast_internal'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Not SECURITY DEFINER on purpose, as lifecycle_define_policy(): a hook
-- named in a proposed definition resolves as the caller would resolve it.
-- 0.3.0: every workflow's instances, rows naming the workflow; workflow
-- limits it to one workflow, workflow_definition forecasts that
-- workflow's running instances as if migrated to the proposed definition
-- (state_map as lifecycle_migrate_workflow() takes it).
CREATE FUNCTION @extschema@.lifecycle_forecast(horizon interval = '90 days',
	policy text = NULL, tenant text = NULL, definition jsonb = NULL,
	workflow text = NULL, workflow_definition jsonb = NULL,
	state_map jsonb = '{}')
RETURNS TABLE (day date, event text, users bigint, workflow text)
LANGUAGE sql STABLE
AS $$ SELECT f.day, f.event, f.users, f.workflow
	FROM lifecycle._forecast($1, $2, $3, $4, pg_catalog.current_schemas(false),
							 $5, $6, $7) AS f $$;

REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_adopt(regclass, text, text, interval),
	lifecycle._adopt_problem(text, text, text, jsonb, timestamptz),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text),
	@extschema@.lifecycle_export(text, text),
	@extschema@.lifecycle_migrate(text, int),
	@extschema@.lifecycle_migrate_workflow(text, int, jsonb),
	lifecycle._rearm_at(int, text, int, text, timestamptz, timestamptz, timestamptz, int, boolean, timestamptz),
	lifecycle._rearm_event(int, text, int, text, timestamptz, timestamptz, timestamptz, int, boolean, timestamptz),
	lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb, jsonb),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_adopt(regclass, text, text, interval),
	lifecycle._adopt_problem(text, text, text, jsonb, timestamptz),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text),
	@extschema@.lifecycle_export(text, text)
TO lifecycle_app;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_migrate(text, int) TO lifecycle_admin;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_migrate_workflow(text, int, jsonb)
TO lifecycle_admin;
GRANT EXECUTE ON FUNCTION
	lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb, jsonb),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb, jsonb)
TO lifecycle_auditor;
