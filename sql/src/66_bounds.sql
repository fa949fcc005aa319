-- lifecycle: retention bounds (issue 17).
--
-- For every policy version and the workflow version it runs: the longest
-- an instance can still exist after entering each state if nobody calls
-- anything again (the longest chain of timers to erased at the policy's
-- values, each interval at its longest over every start date, in days),
-- with the path that attains it (src/core/workflow.c, workflow_bounds()).
-- A policy's max_retention is checked against the same numbers.

CREATE FUNCTION lifecycle._retention_bounds()
RETURNS TABLE (workflow text, workflow_version int, policy text,
			   policy_version int, state text, bound interval, path text[])
AS 'MODULE_PATHNAME', 'lifecycle_retention_bounds'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE VIEW lifecycle.retention_bounds AS
	SELECT workflow, workflow_version, policy, policy_version, state, bound, path
	  FROM lifecycle._retention_bounds();

REVOKE ALL ON FUNCTION lifecycle._retention_bounds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._retention_bounds() TO lifecycle_auditor;
GRANT SELECT ON lifecycle.retention_bounds TO lifecycle_auditor;
