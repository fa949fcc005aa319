-- lifecycle: retention of the audit trail.
--
-- lifecycle.history keeps one row per transition (no e-mail, no attrs).
-- Once a subject is erased, its trail is kept for the "history_retention"
-- of the policy version it ran under, counted from the erasure, and then
-- deleted by lifecycle_prune_history().  The evidence row in
-- lifecycle.erasures (when, why, by whom; not who) is kept: it is the
-- proof that the erasure happened.
--
-- lifecycle_prune_history() (admin) deletes everything due at once and
-- returns the number of history rows it deleted (not of subjects).  The
-- scheduler should call lifecycle._prune_history(max_rows) now and then
-- (e.g. hourly), each call in a short transaction of its own and never
-- inside a tick batch, repeating while it returns max_rows; without the
-- worker, schedule SELECT lifecycle_prune_history() with pg_cron next to
-- lifecycle_tick().  The schema "lifecycle" is fixed, so the worker can
-- call the internal function without knowing the extension's schema.

CREATE FUNCTION lifecycle._prune_history(max_rows int = NULL)
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
	-- The cutoff is computed as now - retention (not erased_at + retention)
	-- and guarded, so an extreme clock cannot overflow the comparison.
	-- One cutoff per policy version.
	WITH c AS MATERIALIZED (
		SELECT p.name, p.version,
			   lifecycle._minus(now_, (p.definition OPERATOR(pg_catalog.->>)
						'history_retention')::pg_catalog.interval) AS cutoff
		  FROM lifecycle.policies p),
	due AS (
		SELECT h.id
		  FROM lifecycle.history h
		  JOIN lifecycle.users u ON h.user_id OPERATOR(pg_catalog.=) u.id
		  JOIN c ON c.name OPERATOR(pg_catalog.=) u.policy
				AND c.version OPERATOR(pg_catalog.=) u.policy_version
		 WHERE u.state OPERATOR(pg_catalog.=) 'erased'
		   AND u.state_since OPERATOR(pg_catalog.<=) c.cutoff
		   AND lifecycle._tenant_visible(u.tenant)
		 LIMIT max_rows)
	DELETE FROM lifecycle.history h
	 USING due
	 WHERE h.id OPERATOR(pg_catalog.=) due.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

CREATE FUNCTION @extschema@.lifecycle_prune_history()
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT lifecycle._prune_history(NULL) $$;

-- ts - iv, or -infinity when that falls before the earliest timestamp.
CREATE FUNCTION lifecycle._minus(ts timestamptz, iv interval)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN ts OPERATOR(pg_catalog.-) iv;
EXCEPTION WHEN datetime_field_overflow THEN
	RETURN '-infinity'::timestamptz;
END
$$;

-- The trail for auditors: every history row with its subject's tenant and
-- current state, erased subjects included (user_id joins
-- lifecycle.erasures), until pruned.  No subject, e-mail or attrs; rows of
-- tenants the acting role may not see are hidden.
CREATE VIEW lifecycle.audit_trail WITH (security_barrier) AS
SELECT h.id, h.user_id, u.tenant, u.policy, u.state AS current_state,
	   h.at, h.due_at, h.from_state, h.to_state, h.event, h.actor, h.detail
  FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) h.user_id
 WHERE lifecycle._tenant_visible(u.tenant);
GRANT SELECT ON lifecycle.audit_trail TO lifecycle_auditor;

REVOKE ALL ON FUNCTION @extschema@.lifecycle_prune_history() FROM PUBLIC;
REVOKE ALL ON FUNCTION lifecycle._minus(timestamptz, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION lifecycle._prune_history(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_prune_history() TO lifecycle_admin;
