-- lifecycle: workflows (docs/WORKFLOWS.md).  A workflow is a named,
-- versioned JSON definition of states, events and timers, validated and
-- proved in C (src/core/workflow.c) when it is defined.  A version never
-- changes once written.

CREATE TABLE lifecycle.workflows (
	name		text NOT NULL,
	version		int NOT NULL CHECK (version > 0),
	-- as stored: validated, proved, defaults filled in
	definition	jsonb NOT NULL,
	created_at	timestamptz NOT NULL,
	built_in	boolean NOT NULL DEFAULT false,
	PRIMARY KEY (name, version)
);

-- Versions are immutable: nobody, the extension's own functions included,
-- may change or remove one (instances and evidence name them).
CREATE FUNCTION lifecycle._workflows_immutable()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'workflow versions cannot be changed or removed'
		USING ERRCODE = '55000',
			  HINT = 'Define a new version with lifecycle_define_workflow().';
END
$$;

CREATE TRIGGER workflows_immutable BEFORE UPDATE OR DELETE ON lifecycle.workflows
	FOR EACH ROW EXECUTE FUNCTION lifecycle._workflows_immutable();
CREATE TRIGGER workflows_no_truncate BEFORE TRUNCATE ON lifecycle.workflows
	FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._workflows_immutable();
-- Compiled versions are cached per backend (src/engine/cache.c): a
-- definition that rolls back must not stay cached under its version.
CREATE TRIGGER cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON lifecycle.workflows FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._cache_invalidate();

-- The built-in versions come with the extension; dumps keep the others.
SELECT pg_catalog.pg_extension_config_dump('lifecycle.workflows', 'WHERE NOT built_in');

GRANT SELECT ON lifecycle.workflows TO lifecycle_auditor;

-- The loader of the built-in definitions below (granted to nobody).
CREATE FUNCTION lifecycle._install_workflow(name text, definition jsonb)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_install_workflow'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_define_workflow(name text, definition jsonb)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_define_workflow'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_workflow(name text, version int = NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'lifecycle_workflow'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- For tests: the retention bound of each state of a definition at its
-- defaults overridden by params, before any policy names the workflow.
CREATE FUNCTION lifecycle._workflow_bounds(definition jsonb, params jsonb = NULL)
RETURNS TABLE (state text, bound interval, path text[])
AS 'MODULE_PATHNAME', 'lifecycle_workflow_bounds'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION lifecycle._workflows_immutable(),
	lifecycle._install_workflow(text, jsonb),
	@extschema@.lifecycle_define_workflow(text, jsonb),
	@extschema@.lifecycle_workflow(text, int),
	lifecycle._workflow_bounds(jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_define_workflow(text, jsonb),
	lifecycle._workflow_bounds(jsonb, jsonb)
TO lifecycle_admin;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_workflow(text, int)
TO lifecycle_auditor;

-- The built-in workflows, version 1: sql/workflows/*.json, embedded here
-- by scripts/assemble-sql.sh.
-- @builtin-workflows@
