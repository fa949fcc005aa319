-- lifecycle: privileges.  PUBLIC may call nothing; each role gets exactly
-- what README.md ("Security model") grants it.

DO $grants$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure
		  FROM pg_catalog.pg_proc p
		  JOIN pg_catalog.pg_depend d
			ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
		   AND d.objid = p.oid AND d.deptype = 'e'
		  JOIN pg_catalog.pg_extension e
			ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid = e.oid AND e.extname = 'lifecycle'
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$grants$;

GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_invite(text, text, text, text, text, jsonb),
	@extschema@.lifecycle_register(text, text),
	@extschema@.lifecycle_touch(text, text),
	@extschema@.lifecycle_complete(text, text),
	@extschema@.lifecycle_restore(text, text),
	@extschema@.lifecycle_erase(text, text, text)
TO lifecycle_app;

GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_status(text, text),
	@extschema@.lifecycle_history(text, text),
	@extschema@.lifecycle_now(),
	lifecycle._tenant_visible(text),
	lifecycle._tenants_unlimited()
TO lifecycle_app, lifecycle_auditor;

GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_graph(text),
	lifecycle.transitions(text, int),
	lifecycle._worker_stats(),
	lifecycle._otel_stats()
TO lifecycle_auditor;

GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_define_policy(text, jsonb),
	lifecycle._define_policy(text, jsonb, name[]),
	@extschema@.lifecycle_archive(text, text),
	@extschema@.lifecycle_hold(text, text, text, timestamptz),
	@extschema@.lifecycle_release(text, text),
	@extschema@.lifecycle_tick(int),
	@extschema@.lifecycle_travel(interval),
	lifecycle._machine_step(text, text, boolean, text)
TO lifecycle_admin;

GRANT SELECT ON
	lifecycle.retention_report, lifecycle.overdue, lifecycle.violations,
	lifecycle.erasures, lifecycle.holds, lifecycle.worker_stats
TO lifecycle_auditor;

-- The default policy, version 1, with the values README.md ("Policies") lists.
SELECT lifecycle._define_policy('default', '{}', '{}');
-- The built-in dsar workflow's same-named policy, version 1, at the
-- workflow's defaults (sql/workflows/dsar.json, "params"): defining a
-- workflow creates it, and lifecycle_start('dsar', ...) uses it.
SELECT lifecycle._define_policy('dsar', '{"workflow": "dsar"}', '{}');

-- The workers serve one database: elsewhere timers need lifecycle_tick().
DO $where$
BEGIN
	IF pg_catalog.current_setting('lifecycle.database', true) IS NULL THEN
		RAISE WARNING 'lifecycle is not in shared_preload_libraries: no worker will advance timers'
			USING HINT = 'Schedule SELECT lifecycle_tick() with pg_cron, or preload lifecycle and set lifecycle.database.';
	ELSIF pg_catalog.current_setting('lifecycle.database') OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN
		RAISE WARNING 'the lifecycle workers serve database "%", not "%"',
			pg_catalog.current_setting('lifecycle.database'), pg_catalog.current_database()
			USING HINT = 'Schedule SELECT lifecycle_tick() with pg_cron in this database.';
	END IF;
END
$where$;
