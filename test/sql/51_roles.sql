-- Role matrix: each lifecycle role (through a login role that is a member,
-- with SET ROLE) and a role without grants, against every function, view
-- and table of the extension: allowed ("ok", whatever the call then says
-- about its NULL arguments) or refused (42501).  Calls run in a
-- subtransaction that is always rolled back.
CREATE ROLE cmp_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_auditor LOGIN IN ROLE lifecycle_auditor;
CREATE ROLE cmp_admin LOGIN IN ROLE lifecycle_admin;
CREATE ROLE cmp_nobody LOGIN;

CREATE TABLE cmp_matrix (who text, kind text, object text, result text);

-- What README.md's "Roles" paragraph (and the parts that add objects)
-- grants: app may call invite, register, touch, complete, restore, erase,
-- status, history, adopt, update, export; auditor may read the views and
-- call status, history, graph, forecast; admin is a member of both and
-- may call everything else (migrate among it); PUBLIC nothing.  Internal
-- helpers (lifecycle._*) are granted only where a view or wrapper (or the
-- adoption statement, which runs as the caller) needs them in the caller's
-- name.
CREATE TABLE cmp_rules (object text PRIMARY KEY, allowed text[], core boolean);
INSERT INTO cmp_rules VALUES
 ('lifecycle_invite',        '{app,admin}', true),
 ('lifecycle_register',      '{app,admin}', true),
 ('lifecycle_touch',         '{app,admin}', true),
 ('lifecycle_complete',      '{app,admin}', true),
 ('lifecycle_restore',       '{app,admin}', true),
 ('lifecycle_erase',         '{app,admin}', true),
 ('lifecycle_status',        '{app,auditor,admin}', true),
 ('lifecycle_history',       '{app,auditor,admin}', true),
 ('lifecycle_now',           '{app,auditor,admin}', true),
 ('lifecycle_graph',         '{auditor,admin}', true),
 ('lifecycle.transitions',   '{auditor,admin}', true),
 ('lifecycle._refresh_deadlines','{}', true),
 ('lifecycle_define_policy', '{admin}', true),
 ('lifecycle_archive',       '{admin}', true),
 ('lifecycle_hold',          '{admin}', true),
 ('lifecycle_release',       '{admin}', true),
 ('lifecycle_tick',          '{admin}', true),
 ('lifecycle_travel',        '{admin}', true),
 ('lifecycle_grant_tenant',  '{admin}', true),
 ('lifecycle_revoke_tenant', '{admin}', true),
 ('lifecycle_prune_history', '{admin}', true),
 ('lifecycle_adopt',         '{app,admin}', true),
 ('lifecycle_update',        '{app,admin}', true),
 ('lifecycle_export',        '{app,admin}', true),
 ('lifecycle_migrate',       '{admin}', true),
 ('lifecycle_migrate_workflow','{admin}', false),
 ('lifecycle_forecast',      '{auditor,admin}', true),
 ('lifecycle._adopt_problem','{app,admin}', true),
 ('lifecycle._shard',       '{app,admin}', false),
 ('lifecycle._forecast',     '{auditor,admin}', true),
 ('lifecycle._rearm_at',     '{}', true),
 ('lifecycle._rearm_event',  '{}', true),
 ('lifecycle_add_channel',   '{admin}', false),
 ('lifecycle_retry_dead',    '{admin}', false),
 ('lifecycle._webhook_signature','{admin}', false),
 ('lifecycle_prune_outbox',  '{admin}', false),
 ('lifecycle._prune_outbox', '{}', false),
 ('lifecycle_claim_messages', '{app,admin}', false),
 ('lifecycle_ack_messages',  '{app,admin}', false),
 ('lifecycle._outbox_notify', '{}', false),
 ('lifecycle.workflows',     '{auditor,admin}', false),
 ('lifecycle_define_workflow','{admin}', false),
 ('lifecycle_workflow',      '{auditor,admin}', false),
 ('lifecycle._workflow_bounds','{admin}', false),
 ('lifecycle._render_mail',   '{admin}', false),
 ('lifecycle._policy_transitions','{}', false),
 ('lifecycle._install_workflow','{}', false),
 ('lifecycle._workflows_immutable','{}', false),
 ('lifecycle._otel_stats',   '{auditor,admin}', false),
 ('lifecycle._otel_transitions','{}', false),
 ('lifecycle.otel_cursor',   '{}', false),
 ('lifecycle._count_trigger', '{}', false),
 ('lifecycle._counting',    '{app,admin}', false),
 ('lifecycle._trace_id',    '{app,admin}', false),
 ('lifecycle.counts',        '{}', false),
 ('lifecycle.count_deltas',  '{}', false),
 ('lifecycle.retention_bounds','{auditor,admin}', false),
 ('lifecycle._retention_bounds','{auditor,admin}', false),
 ('lifecycle_start',         '{app,admin}', false),
 ('lifecycle_signal',        '{app,admin}', false),
 ('lifecycle_instances',     '{app,auditor,admin}', false),
 ('lifecycle.instances',     '{auditor,admin}', false),
 ('lifecycle._define_policy','{admin}', true),
 ('lifecycle._machine_step', '{admin}', true),
 ('lifecycle._tenant_visible','{app,auditor,admin}', true),
 ('lifecycle._tenants_unlimited','{app,auditor,admin}', false),
 ('lifecycle._worker_stats', '{auditor,admin}', true),
 ('lifecycle._check_tenant', '{}', true),
 ('lifecycle._actor',        '{}', true),
 ('lifecycle._check_unlimited','{}', true),
 ('lifecycle._minus',        '{}', true),
 ('lifecycle._prune_history','{}', true),
 ('lifecycle._cache_invalidate','{}', true),
 ('lifecycle.retention_report','{auditor,admin}', true),
 ('lifecycle.violations',    '{auditor,admin}', true),
 ('lifecycle.overdue',       '{auditor,admin}', true),
 ('lifecycle.holds',         '{auditor,admin}', true),
 ('lifecycle.erasures',      '{auditor,admin}', true),
 ('lifecycle.worker_stats',  '{auditor,admin}', true),
 ('lifecycle.tenant_grants', '{auditor,admin}', true),
 ('lifecycle.audit_trail',   '{auditor,admin}', true),
 ('lifecycle.comms',         '{auditor,admin}', false),
 ('lifecycle.dead_letters',  '{auditor,admin}', false),
 ('lifecycle.metrics',       '{auditor,admin}', false),
 ('lifecycle.users',         '{}', true),
 ('lifecycle.history',       '{}', true),
 ('lifecycle.outbox',        '{}', true),
 ('lifecycle.channels',      '{}', true),
 ('lifecycle.policies',      '{}', true),
 ('lifecycle.clock',         '{}', true);

DO $matrix$
DECLARE
	who text;
	obj record;
	res text;
BEGIN
	FOREACH who IN ARRAY ARRAY['app', 'auditor', 'admin', 'nobody'] LOOP
		FOR obj IN
			SELECT 'function' AS kind,
				   regexp_replace(p.oid::regprocedure::text, '\(.*$', '') AS name,
				   -- Arguments from a subquery, so that the planner cannot
				   -- fold a STRICT call on NULL constants before the
				   -- executor checks the privilege.
				   CASE WHEN p.pronargs = 0 THEN format('SELECT %s()', p.oid::regproc::text)
				   ELSE format('SELECT %s(%s) FROM (SELECT %s OFFSET 0) a', p.oid::regproc::text,
						  (SELECT string_agg('a.x' || n, ', ' ORDER BY n)
							 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n)),
						  (SELECT string_agg('NULL::' || format_type(t, NULL) || ' AS x' || n, ', ' ORDER BY n)
							 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n))) END AS sql
			  FROM pg_proc p
			  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
			   AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension
													  WHERE extname = 'lifecycle')
			UNION ALL
			SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END,
				   'lifecycle.' || c.relname,
				   format('SELECT count(*) FROM (SELECT * FROM lifecycle.%I) s', c.relname)
			  FROM pg_class c
			 WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'v')
		LOOP
			BEGIN
				EXECUTE format('SET ROLE cmp_%s', who);
				EXECUTE obj.sql;
				RAISE EXCEPTION USING ERRCODE = 'LCOK0';
			EXCEPTION
				WHEN SQLSTATE 'LCOK0' THEN res := 'ok';
				WHEN insufficient_privilege THEN res := '42501';
				WHEN OTHERS THEN res := 'ok';	/* past the privilege check */
			END;
			INSERT INTO cmp_matrix VALUES (who, obj.kind, obj.name, res);
		END LOOP;
	END LOOP;
END
$matrix$;
SELECT current_user = session_user AS role_restored;

-- The matrix of the core objects (README.md's API, views and tables).
SELECT m.kind, m.object,
	   max(result) FILTER (WHERE who = 'app') AS app,
	   max(result) FILTER (WHERE who = 'auditor') AS auditor,
	   max(result) FILTER (WHERE who = 'admin') AS admin,
	   max(result) FILTER (WHERE who = 'nobody') AS nobody
  FROM cmp_matrix m JOIN cmp_rules r ON r.object = m.object AND r.core
 GROUP BY m.kind, m.object ORDER BY m.kind, m.object;

-- Every object, core or added by other parts, against the rules: no
-- mismatch, and no object without a rule (a new object must be reviewed).
SELECT m.object, m.who, m.result,
	   CASE WHEN r.object IS NULL THEN 'no rule' ELSE 'expected ' ||
		 CASE WHEN m.who = ANY (r.allowed) THEN 'ok' ELSE '42501' END END AS rule
  FROM cmp_matrix m LEFT JOIN cmp_rules r ON r.object = m.object
 WHERE r.object IS NULL
	OR (m.result = 'ok') <> (m.who = ANY (r.allowed))
 ORDER BY 1, 2;
-- Objects of the rules the core install must have.
SELECT r.object AS missing FROM cmp_rules r
 WHERE r.core AND NOT EXISTS (SELECT 1 FROM cmp_matrix m WHERE m.object = r.object);

-- Nobody but the owner may write any table of the extension directly.
SELECT c.relname, r.rolname, p.priv
  FROM pg_class c
 CROSS JOIN (VALUES ('lifecycle_app'), ('lifecycle_auditor'), ('lifecycle_admin'),
					('cmp_nobody'), ('public')) AS r(rolname)
 CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'),
					('REFERENCES'), ('TRIGGER')) AS p(priv)
 WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'v', 'S')
   AND (has_table_privilege(r.rolname, c.oid, p.priv)
		OR (c.relkind <> 'S' AND p.priv IN ('INSERT', 'UPDATE', 'REFERENCES') AND EXISTS (
			SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
			   AND NOT a.attisdropped
			   AND has_column_privilege(r.rolname, c.oid, a.attnum, p.priv))));

-- Nobody but the owner may create objects in the schema lifecycle (where
-- they could shadow the extension's own), and only the lifecycle roles
-- may use it.
SELECT r.rolname, has_schema_privilege(r.rolname, 'lifecycle', 'CREATE') AS can_create,
	   has_schema_privilege(r.rolname, 'lifecycle', 'USAGE') AS can_use
  FROM (VALUES ('lifecycle_app'), ('lifecycle_auditor'), ('lifecycle_admin'),
			   ('cmp_nobody')) r(rolname) ORDER BY 1;

-- Auditors can read no column that holds e-mail, attrs, payloads or
-- secrets, in any table or view of the extension; no role but the owner
-- reads a channel secret.
SELECT r.rolname, c.relname, a.attname
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 CROSS JOIN (VALUES ('cmp_app'), ('cmp_auditor'), ('cmp_admin'), ('cmp_nobody')) r(rolname)
 WHERE c.relnamespace = 'lifecycle'::regnamespace AND NOT a.attisdropped
   AND has_column_privilege(r.rolname, c.oid, a.attnum, 'SELECT')
   AND (a.attname = 'secret'
		OR (r.rolname = 'cmp_auditor'
			AND a.attname IN ('email', 'attrs', 'payload', 'target', 'options')));

-- And by value: after inviting people with e-mail addresses, attributes
-- and messages (payloads carry both), no row an auditor can read contains
-- either, in any view or table.
SELECT lifecycle_invite('aud1', 'needle.mail@example.org', 'cmp_roles', 'default',
						'eu', '{"phone": "needle-phone-555"}') > 0 AS invited;
SELECT lifecycle_register('aud1', 'cmp_roles');
SELECT lifecycle_complete('aud1', 'cmp_roles');
SELECT lifecycle_hold('aud1', 'cmp_roles', 'audit hold');
SET ROLE cmp_auditor;
DO $scan$
DECLARE
	rel record;
	cols text;
	hits bigint;
	total bigint := 0;
BEGIN
	FOR rel IN
		SELECT c.oid, c.relname FROM pg_class c
		 WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'v')
		 ORDER BY c.relname
	LOOP
		SELECT string_agg(quote_ident(a.attname), ', ') INTO cols
		  FROM pg_attribute a
		 WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
		   AND has_column_privilege(rel.oid, a.attnum, 'SELECT');
		CONTINUE WHEN cols IS NULL;
		EXECUTE format('SELECT count(*) FROM (SELECT %s FROM lifecycle.%I) s'
					   ' WHERE row_to_json(s)::text ~ ''needle''', cols, rel.relname)
		   INTO hits;
		IF hits > 0 THEN
			RAISE WARNING 'lifecycle.% shows personal data to auditors', rel.relname;
		END IF;
		total := total + 1;
	END LOOP;
	RAISE NOTICE 'auditor scan: % readable relations, none with e-mail or attrs',
		CASE WHEN total >= 7 THEN 'all' ELSE total::text END;
END
$scan$;
-- The auditor sees the subject where it is needed (holds) but not the
-- e-mail: status and history carry neither e-mail nor attrs either.
SELECT subject, reason FROM lifecycle.holds WHERE tenant = 'cmp_roles';
SELECT state, held FROM lifecycle_status('aud1', 'cmp_roles');
SELECT count(*) FILTER (WHERE h::text ~ 'needle') AS history_hits
  FROM lifecycle_history('aud1', 'cmp_roles') h;
RESET ROLE;

-- The history records the acting role (SET ROLE), not the owner.
SET ROLE cmp_app;
SELECT lifecycle_invite('aud2', 'aud2@example.org', 'cmp_roles') > 0 AS invited;
SELECT lifecycle_register('aud2', 'cmp_roles');
RESET ROLE;
SET ROLE cmp_admin;
SELECT lifecycle_archive('aud2', 'cmp_roles');
RESET ROLE;
SELECT event, actor FROM lifecycle_history('aud2', 'cmp_roles') ORDER BY at, id;

DROP TABLE cmp_matrix, cmp_rules;
DROP ROLE cmp_app, cmp_auditor, cmp_admin, cmp_nobody;
