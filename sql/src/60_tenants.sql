-- lifecycle: tenant scoping.
--
-- A role listed in lifecycle.tenant_grants (directly, or through a role it
-- is a member of) may act on, and see rows of, only the tenants listed for
-- it; a role with no row is not limited.  Functions refuse other tenants
-- with 42501; the views hide their rows; lifecycle.erasures hides them with
-- row-level security.
--
-- The table is managed through two functions, not by granting INSERT or
-- DELETE on it: a function can refuse what a plain table privilege cannot.
--   * Only an unlimited admin (no tenant_grants row of its own) may grant or
--     revoke: a role limited to tenant A could otherwise widen itself.
--   * Revoking a role's last tenant is refused (55000): with no row left the
--     role would be unlimited, the opposite of what a revoke means.  To take
--     a role's access away, revoke its lifecycle role membership instead.

-- 42501 when the acting role is limited to some tenants; "what" names the
-- action in the error's detail (src/acting.c).
CREATE FUNCTION lifecycle._check_unlimited(what text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_check_unlimited'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Limit role_name to tenant (adds to the tenants it already has).  Returns
-- false when the grant existed already.
CREATE FUNCTION @extschema@.lifecycle_grant_tenant(role_name name, tenant text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	IF role_name IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'role_name and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	IF pg_catalog.btrim(tenant) OPERATOR(pg_catalog.=) ''
	   OR pg_catalog.octet_length(tenant) OPERATOR(pg_catalog.>) 63 THEN
		RAISE EXCEPTION 'tenant must be 1 to 63 bytes, not blank' USING ERRCODE = '22023';
	END IF;
	PERFORM lifecycle._check_unlimited('grant tenants');
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
					WHERE r.rolname OPERATOR(pg_catalog.=) lifecycle_grant_tenant.role_name) THEN
		RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = '42704';
	END IF;
	INSERT INTO lifecycle.tenant_grants AS g (role_name, tenant)
		VALUES (lifecycle_grant_tenant.role_name, lifecycle_grant_tenant.tenant)
		ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n OPERATOR(pg_catalog.>) 0;
END
$$;

-- Take one tenant from role_name.  Refuses (55000) to remove the role's
-- last tenant, which would leave it unlimited.  Returns false when there
-- was no such grant.
CREATE FUNCTION @extschema@.lifecycle_revoke_tenant(role_name name, tenant text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	IF role_name IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'role_name and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_unlimited('revoke tenants');
	-- Serialise grants and revokes of this role.
	PERFORM 1 FROM lifecycle.tenant_grants g
	  WHERE g.role_name OPERATOR(pg_catalog.=) lifecycle_revoke_tenant.role_name
	  FOR UPDATE;
	IF NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants g
					WHERE g.role_name OPERATOR(pg_catalog.=) lifecycle_revoke_tenant.role_name
					  AND g.tenant OPERATOR(pg_catalog.=) lifecycle_revoke_tenant.tenant) THEN
		RETURN false;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants g
					WHERE g.role_name OPERATOR(pg_catalog.=) lifecycle_revoke_tenant.role_name
					  AND g.tenant OPERATOR(pg_catalog.<>) lifecycle_revoke_tenant.tenant) THEN
		RAISE EXCEPTION 'tenant "%" is the last tenant of role "%"', tenant, role_name
			USING ERRCODE = '55000',
				  DETAIL = 'A role with no row in lifecycle.tenant_grants is not limited to any tenant.',
				  HINT = 'Grant it another tenant first, or REVOKE its lifecycle role membership.';
	END IF;
	DELETE FROM lifecycle.tenant_grants g
	 WHERE g.role_name OPERATOR(pg_catalog.=) lifecycle_revoke_tenant.role_name
	   AND g.tenant OPERATOR(pg_catalog.=) lifecycle_revoke_tenant.tenant;
	RETURN true;
END
$$;

REVOKE ALL ON FUNCTION lifecycle._check_unlimited(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.lifecycle_grant_tenant(name, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.lifecycle_revoke_tenant(name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_grant_tenant(name, text),
	@extschema@.lifecycle_revoke_tenant(name, text)
TO lifecycle_admin;

-- Who may see what: auditors (and admins) read the grants of the tenants
-- they may see (row-level security, 00_schema.sql); the functions above
-- are the only way to change them.
GRANT SELECT ON lifecycle.tenant_grants TO lifecycle_auditor;
