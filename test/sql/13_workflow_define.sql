-- lifecycle_define_workflow(): versions, defaults filled in, built-ins
-- refused, versions that never change, and who may do what.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

\set review '{"params": {"every": "3 mons", "notice": ["14 days"]}, "messages": {"review_due": {"subject": "Access review", "text": "Review {{attrs.team}}."}}, "states": {"granted": {"timer": {"event": "review_due", "after": "every", "to": "lapsed", "message": "review_due", "deadline": "review", "reminders": {"before": "notice", "event": "review_reminder"}}}, "lapsed": {"timer": {"event": "purge_due", "after": "30 days", "from": "due", "to": "erased"}}}, "events": {"grant": [{"from": ["none", "lapsed"], "to": "granted"}], "confirm": [{"from": ["granted"], "to": "granted"}], "revoke": [{"from": ["granted"], "to": "lapsed", "role": "admin", "hook": "revoke"}]}}'

-- Versions count from 1; the stored definition has its defaults.
SELECT lifecycle_define_workflow('t13_review', :'review') AS version;
SELECT lifecycle_define_workflow('t13_review',
	jsonb_set(:'review', '{params,every}', '"1 mon"')) AS version;
SELECT name, version, built_in, created_at IS NOT NULL AS dated
  FROM lifecycle.workflows WHERE name = 't13_review' ORDER BY version;
SELECT lifecycle_workflow('t13_review') -> 'params' ->> 'every' AS latest,
	   lifecycle_workflow('t13_review', 1) -> 'params' ->> 'every' AS first;
SELECT jsonb_pretty(lifecycle_workflow('t13_review', 1) - 'messages');
SELECT * FROM lifecycle._workflow_bounds(lifecycle_workflow('t13_review')) ORDER BY state;

-- A refused definition writes no version.
SELECT lifecycle_define_workflow('t13_review',
	jsonb_set(:'review', '{states,lapsed,timer,to}', '"granted"'));
\echo :LAST_ERROR_SQLSTATE
SELECT max(version) FROM lifecycle.workflows WHERE name = 't13_review';

-- Built-in workflows cannot be redefined (55000); their names are theirs.
SELECT lifecycle_define_workflow('user', :'review');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('dsar', :'review');
\echo :LAST_ERROR_SQLSTATE
-- Bad arguments.
SELECT lifecycle_define_workflow('Review', :'review');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow(repeat('r', 64), :'review');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow(NULL, :'review');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('t13_x', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('t13_x', '"a string"');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_workflow('t13_nothing');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_workflow('t13_review', 3);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_workflow('t13_review', 0);
\echo :LAST_ERROR_SQLSTATE

-- A version never changes, not even by the table's owner.
UPDATE lifecycle.workflows SET definition = '{}' WHERE name = 't13_review';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM lifecycle.workflows WHERE name = 'user';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE lifecycle.workflows;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM lifecycle.workflows WHERE name IN ('user', 'dsar', 't13_review');

-- Roles: admins define, auditors read, the application does neither; a
-- role limited to some tenants may not define workflows (42501).
CREATE ROLE t13_app IN ROLE lifecycle_app;
CREATE ROLE t13_auditor IN ROLE lifecycle_auditor;
CREATE ROLE t13_admin IN ROLE lifecycle_admin;
CREATE ROLE t13_limited IN ROLE lifecycle_admin;
SELECT lifecycle_grant_tenant('t13_limited', 't13_tenant');
SET ROLE t13_admin;
SELECT lifecycle_define_workflow('t13_review', :'review') AS version;
SELECT count(*) > 0 AS readable FROM lifecycle.workflows;
RESET ROLE;
SET ROLE t13_limited;
SELECT lifecycle_define_workflow('t13_review', :'review');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE t13_auditor;
SELECT lifecycle_workflow('dsar') -> 'params' AS dsar_params;
SELECT name, version, built_in FROM lifecycle.workflows WHERE built_in ORDER BY name;
SELECT lifecycle_define_workflow('t13_review', :'review');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle._workflow_bounds('{}');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE t13_app;
SELECT lifecycle_workflow('user');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM lifecycle.workflows;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT max(version) FROM lifecycle.workflows WHERE name = 't13_review';
