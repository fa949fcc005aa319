-- lifecycle: instances of any workflow (0.3.0).  An instance is one run of
-- one workflow version for one subject: a row of lifecycle.users,
-- identified by (tenant, subject, workflow, key).  The user lifecycle's
-- instances are workflow 'user', key ''; its named functions
-- (lifecycle_invite() and the rest, 10_api.sql) are its events.

-- Application (lifecycle_app) ---------------------------------------------

CREATE FUNCTION @extschema@.lifecycle_start(workflow text, subject text,
	tenant text = 'default', key text = '', policy text = NULL,
	email text = NULL, region text = NULL, attrs jsonb = NULL,
	data jsonb = '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_start'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_signal(workflow text, subject text,
	event text, tenant text = 'default', key text = '')
RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_signal'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The subject's instances that are not erased, oldest first.  Once the
-- subject's personal data is erased the subject is unknown (42704).
CREATE FUNCTION @extschema@.lifecycle_instances(subject text, tenant text = 'default')
RETURNS TABLE (id bigint, workflow text, key text, state text,
	since timestamptz, next_event text, next_at timestamptz,
	deadline_event text, deadline_at timestamptz, held boolean,
	policy text, policy_version int, workflow_version int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	RETURN QUERY
		SELECT u.id, u.workflow::text, u.key, u.state::text, u.state_since,
			   u.next_event, u.next_at, u.deadline_event, u.deadline_at,
			   -- a hold whose until has passed is lapsed, written or not
			   u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now()),
			   u.policy, u.policy_version, u.workflow_version
		  FROM lifecycle.users u
		 WHERE u.tenant = lifecycle_instances.tenant
		   AND u.subject = lifecycle_instances.subject
		 ORDER BY u.id;
	IF NOT FOUND THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_start() to start a workflow.';
	END IF;
END
$$;

-- Auditors (lifecycle_auditor) --------------------------------------------

-- Every instance of every workflow, erased ones included (their subject is
-- NULL), without e-mail, region, attrs or data; rows of tenants the
-- acting role may not see are hidden.  held: a hold in force.
CREATE VIEW lifecycle.instances WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.workflow, u.workflow_version, u.key,
	   u.policy, u.policy_version, u.state, u.state_since, u.next_event,
	   u.next_at, u.deadline_event, u.deadline_at,
	   u.held AND (u.hold_until IS NULL
				   OR u.hold_until > @extschema@.lifecycle_now()) AS held
  FROM lifecycle.users u
 WHERE lifecycle._tenant_visible(u.tenant);

GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_start(text, text, text, text, text, text, text, jsonb, jsonb),
	@extschema@.lifecycle_signal(text, text, text, text, text),
	@extschema@.lifecycle_instances(text, text)
TO lifecycle_app;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_instances(text, text)
TO lifecycle_auditor;
GRANT SELECT ON lifecycle.instances TO lifecycle_auditor;
