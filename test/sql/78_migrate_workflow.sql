-- Versions in flight (issue 18): lifecycle_migrate_workflow() moves the
-- running instances of a workflow's older versions to a newer one, states
-- by name or by state_map, timers re-armed from their anchors, one history
-- row each, their policy moved to a version naming the new workflow
-- version; every refusal with its SQLSTATE, nothing moved; the forecast
-- of a proposed definition is what the migration then does; the migrated
-- instances tick under the new version.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE ROLE t78_admin LOGIN IN ROLE lifecycle_admin;
CREATE ROLE t78_limited LOGIN IN ROLE lifecycle_admin;
CREATE ROLE t78_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE t78_auditor LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('t78_limited', 't78');

-- Version 1: open for ttl (10 days), or parked for 30 days; then closed,
-- purged a day later.
\set v1 '{"params": {"ttl": "10 days"}, "states": {"open": {"timer": {"event": "expire", "after": "ttl", "to": "closed"}}, "parked": {"timer": {"event": "unpark", "after": "30 days", "to": "closed"}}, "closed": {"timer": {"event": "purge", "after": "1 day", "to": "erased"}}}, "events": {"begin": [{"from": ["none"], "to": "open"}], "park": [{"from": ["open"], "to": "parked"}]}}'
-- Version 2: open for grace (a new param, 5 days); parked is gone, a
-- waiting state (3 days) is new.
\set v2 '{"params": {"ttl": "10 days", "grace": "5 days"}, "states": {"open": {"timer": {"event": "expire", "after": "grace", "to": "closed"}}, "waiting": {"timer": {"event": "give_up", "after": "3 days", "to": "closed"}}, "closed": {"timer": {"event": "purge", "after": "1 day", "to": "erased"}}}, "events": {"begin": [{"from": ["none"], "to": "open"}], "wait": [{"from": ["open"], "to": "waiting"}]}}'
SELECT lifecycle_define_workflow('t78_flow', :'v1') AS version;
SELECT lifecycle_start('t78_flow', s, 't78') > 0 AS started
  FROM unnest(ARRAY['s1', 's2']) s;
SELECT (lifecycle_now() AT TIME ZONE 'UTC')::date AS d0 \gset

-- The forecast names the workflow; limited to it, and as if version 2
-- were migrated to (the what-if): the expiry comes 5 days earlier.
SELECT day - :'d0'::date AS in_days, event, users, workflow
  FROM lifecycle_forecast('20 days', workflow => 't78_flow');
CREATE TEMP TABLE whatif AS
SELECT day - :'d0'::date AS in_days, event, users, workflow
  FROM lifecycle_forecast('20 days', workflow => 't78_flow',
						  workflow_definition => :'v2');
SELECT * FROM whatif;
-- Nothing was written by the what-if.
SELECT count(*) AS versions FROM lifecycle.workflows WHERE name = 't78_flow';
-- Refusals of the what-if.
SELECT * FROM lifecycle_forecast('20 days', workflow_definition => :'v2');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('20 days', workflow => 't78_none', workflow_definition => :'v2');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('20 days', workflow => 't78_flow', workflow_definition => '{"states": {}}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('20 days', 'default', workflow => 't78_flow',
								 definition => '{}', workflow_definition => :'v2');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('20 days', 't78_flow', definition => '{}');
\echo :LAST_ERROR_SQLSTATE

-- s3 is parked: a state version 2 lacks.
SELECT lifecycle_start('t78_flow', 's3', 't78') > 0 AS started;
SELECT lifecycle_signal('t78_flow', 's3', 'park', 't78') AS state;
SELECT * FROM lifecycle_forecast('20 days', workflow => 't78_flow',
								 workflow_definition => :'v2');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('t78_flow', :'v2') AS version;
-- The policy stays on the version it names until a migration.
SELECT version, workflow_version FROM lifecycle.policies
 WHERE name = 't78_flow' ORDER BY version;
CREATE TEMP TABLE before78 AS SELECT * FROM lifecycle.users WHERE tenant = 't78';

-- Refusals, each with its SQLSTATE; nothing moves.
SELECT lifecycle_migrate_workflow('t78_flow');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 2, '{"parked": "nowhere"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 2, '{"parked": "erased"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 2, '{"parked": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 2, '["parked"]');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 2, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_none');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_migrate_workflow('t78_flow', 3);
\echo :LAST_ERROR_SQLSTATE
SET ROLE t78_limited;
SELECT lifecycle_migrate_workflow('t78_flow', 2, '{"parked": "waiting"}');
\echo :LAST_ERROR_SQLSTATE
SET ROLE t78_app;
SELECT lifecycle_migrate_workflow('t78_flow', 2, '{"parked": "waiting"}');
\echo :LAST_ERROR_SQLSTATE
SET ROLE t78_auditor;
SELECT lifecycle_migrate_workflow('t78_flow', 2, '{"parked": "waiting"}');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS changed FROM (
	SELECT * FROM lifecycle.users WHERE tenant = 't78'
	EXCEPT SELECT * FROM before78) c;
SELECT count(*) AS policy_versions FROM lifecycle.policies WHERE name = 't78_flow';

-- The migration: parked maps to waiting, open stays open.
SET ROLE t78_admin;
SELECT lifecycle_migrate_workflow('t78_flow', state_map => '{"parked": "waiting"}') AS moved;
RESET ROLE;
SELECT u.subject, b.state AS was, u.state, u.workflow_version, u.policy_version,
	   u.state_since = b.state_since AS same_since,
	   u.next_event, u.next_at - u.state_since AS next_in
  FROM lifecycle.users u JOIN before78 b USING (id) ORDER BY u.subject;
-- The policy got a version naming workflow version 2 (its own numbers
-- kept, the new param at its default).
SELECT version, workflow_version, definition ->> 'ttl' AS ttl,
	   definition ->> 'grace' AS grace
  FROM lifecycle.policies WHERE name = 't78_flow' ORDER BY version;
-- One history row each.
SELECT u.subject, h.event, h.from_state, h.to_state, h.detail
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't78' AND h.event = 'migrate' ORDER BY u.subject;
-- Nothing is left on version 1; a second migration moves nothing.
SELECT lifecycle_migrate_workflow('t78_flow') AS moved_again;
SELECT lifecycle_migrate_workflow('user') AS user_moved;
-- The what-if was right: the forecast now is the one made before the
-- migration for s1 and s2, plus s3's new waiting timer (give up at 3
-- days, purged a day later).
SELECT count(*) AS whatif_differs FROM (
	(SELECT day - :'d0'::date, event, users, workflow
	   FROM lifecycle_forecast('20 days', workflow => 't78_flow')
	 EXCEPT ALL (SELECT * FROM whatif UNION ALL
				 VALUES (3, 'give_up', 1, 't78_flow'), (4, 'purge', 1, 't78_flow')))
	UNION ALL
	((SELECT * FROM whatif UNION ALL
	  VALUES (3, 'give_up', 1, 't78_flow'), (4, 'purge', 1, 't78_flow'))
	 EXCEPT ALL SELECT day - :'d0'::date, event, users, workflow
	   FROM lifecycle_forecast('20 days', workflow => 't78_flow'))) d;
-- A new instance starts on version 2.
SELECT lifecycle_start('t78_flow', 's4', 't78') > 0 AS started;
SELECT workflow_version, policy_version FROM lifecycle.users
 WHERE tenant = 't78' AND subject = 's4';

-- The migrated instances tick under version 2: s3 gives up after 3 days
-- in its state, s1 and s2 expire after 5.
SELECT rt.travel('3 days 1 hour') IS NOT NULL AS travelled;
SELECT lifecycle_tick() > 0 AS ticked;
SELECT subject, state, next_event FROM lifecycle.users
 WHERE tenant = 't78' ORDER BY subject;
SELECT rt.travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() > 0 AS ticked;
SELECT subject, state, next_event FROM lifecycle.users
 WHERE tenant = 't78' ORDER BY subject;
SELECT u.subject, h.event, h.from_state, h.to_state
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't78' AND h.event NOT IN ('begin', 'park')
 ORDER BY u.subject, h.id;

-- Clean up: everything runs out by its timers.
SELECT rt.travel('10 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT rt.travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT count(*) AS live FROM lifecycle.users WHERE tenant = 't78' AND state <> 'erased';
-- The lifecycle clock goes back to where it was, so that the files after
-- this one see the clock they expect.
SELECT rt.travel('-17 days -1 hour') = interval '-17 days -1 hour' AS travelled_back;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 't78_limited';
DROP ROLE t78_admin, t78_limited, t78_app, t78_auditor;
