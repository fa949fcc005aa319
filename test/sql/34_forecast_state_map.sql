-- The what-if takes a state_map (issue 18): lifecycle_forecast(...,
-- workflow, workflow_definition, state_map) forecasts a migration to a
-- proposed definition that renames states, state_map meaning what it
-- means to lifecycle_migrate_workflow(): each running state maps to the
-- state of the same name, or as state_map says; an unmapped state the
-- definition lacks is refused with 22023 naming it and how many instances
-- are in it, as the migration refuses it.  The forecast is what the
-- migration with the same map then does.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Version 1: open for 10 days, or parked for 20; then closed, purged a
-- day later.  Version 2 renames parked to on_hold (held 6 days).
\set v1 '{"states": {"open": {"timer": {"event": "expire", "after": "10 days", "to": "closed"}}, "parked": {"timer": {"event": "unpark", "after": "20 days", "to": "closed"}}, "closed": {"timer": {"event": "purge", "after": "1 day", "to": "erased"}}}, "events": {"begin": [{"from": ["none"], "to": "open"}], "park": [{"from": ["open"], "to": "parked"}]}}'
\set v2 '{"states": {"open": {"timer": {"event": "expire", "after": "10 days", "to": "closed"}}, "on_hold": {"timer": {"event": "unhold", "after": "6 days", "to": "closed"}}, "closed": {"timer": {"event": "purge", "after": "1 day", "to": "erased"}}}, "events": {"begin": [{"from": ["none"], "to": "open"}], "park": [{"from": ["open"], "to": "on_hold"}]}}'
SELECT lifecycle_define_workflow('t34f_flow', :'v1') AS version;
SELECT lifecycle_start('t34f_flow', s, 't34f') > 0 AS started
  FROM unnest(ARRAY['f1', 'f2', 'f3']) s;
SELECT lifecycle_signal('t34f_flow', s, 'park', 't34f') AS state
  FROM unnest(ARRAY['f2', 'f3']) s;
SELECT (lifecycle_now() AT TIME ZONE 'UTC')::date AS d0 \gset

-- Without a map the what-if is refused, as the migration would be: two
-- instances are parked, a state version 2 lacks.
SELECT * FROM lifecycle_forecast('30 days', workflow => 't34f_flow',
								 workflow_definition => :'v2');
\echo :LAST_ERROR_SQLSTATE
-- With the map: the parked instances as if on_hold (6 days from entering
-- it), the open one as it is.
CREATE TEMP TABLE whatif AS
SELECT day - :'d0'::date AS in_days, event, users, workflow
  FROM lifecycle_forecast('30 days', workflow => 't34f_flow',
						  workflow_definition => :'v2',
						  state_map => '{"parked": "on_hold"}');
SELECT * FROM whatif ORDER BY in_days, event;
-- The map's refusals are the migration's: a target that is no state, not
-- an object, NULL; a map without a proposed definition.
SELECT * FROM lifecycle_forecast('30 days', workflow => 't34f_flow',
								 workflow_definition => :'v2',
								 state_map => '{"parked": "nowhere"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('30 days', workflow => 't34f_flow',
								 workflow_definition => :'v2',
								 state_map => '["parked"]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('30 days', workflow => 't34f_flow',
								 workflow_definition => :'v2', state_map => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_forecast('30 days', workflow => 't34f_flow',
								 state_map => '{"parked": "on_hold"}');
\echo :LAST_ERROR_SQLSTATE
-- Nothing was written by the what-if.
SELECT count(*) AS versions FROM lifecycle.workflows WHERE name = 't34f_flow';

-- The migration with the same map does what the what-if said.
SELECT lifecycle_define_workflow('t34f_flow', :'v2') AS version;
SELECT lifecycle_migrate_workflow('t34f_flow', 2, '{"parked": "on_hold"}') AS moved;
SELECT u.subject, u.state, u.workflow_version FROM lifecycle.users u
 WHERE u.tenant = 't34f' ORDER BY u.subject;
SELECT count(*) AS differences FROM (
	(SELECT * FROM whatif
	 EXCEPT ALL
	 SELECT day - :'d0'::date, event, users, workflow
	   FROM lifecycle_forecast('30 days', workflow => 't34f_flow'))
	UNION ALL
	(SELECT day - :'d0'::date, event, users, workflow
	   FROM lifecycle_forecast('30 days', workflow => 't34f_flow')
	 EXCEPT ALL
	 SELECT * FROM whatif)) d;
-- The auditor may call it with the map.
SET ROLE lifecycle_auditor;
SELECT count(*) > 0 AS auditor_forecast
  FROM lifecycle_forecast('30 days', workflow => 't34f_flow', state_map => '{}');
RESET ROLE;

-- Nothing of this file is left running.
SELECT lifecycle_erase(s, 't34f') > 0 AS erased FROM unnest(ARRAY['f1', 'f2', 'f3']) s;
