-- Workflows as data (docs/WORKFLOWS.md): the built-in definitions are
-- installed as version 1 and pass every proof; their retention bounds.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- SQLSTATE and message of a refused definition (NULL: accepted).
CREATE FUNCTION pg_temp.refusal(definition jsonb, params jsonb = NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lifecycle._workflow_bounds(definition, params);
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT name, version, built_in FROM lifecycle.workflows ORDER BY name;

-- The user workflow at the default policy: active is bounded by
-- 90 + 30 + 365 days, with the chain of timers that attains it.
SELECT * FROM lifecycle._workflow_bounds(lifecycle_workflow('user')) ORDER BY state;
-- At the default policy's values given as a policy.
SELECT * FROM lifecycle._workflow_bounds(lifecycle_workflow('user'),
	(SELECT definition FROM lifecycle.policies WHERE name = 'default' AND version = 1))
 WHERE state = 'active';
-- dsar: "1 mon" counts 31 days, "1 mon" + "2 mons" 92, "2 years" 731.
SELECT * FROM lifecycle._workflow_bounds(lifecycle_workflow('dsar')) ORDER BY state;

-- Stored with defaults filled in: every timer has its anchor and
-- deadline label, every edge its role.
SELECT jsonb_pretty(lifecycle_workflow('user') -> 'states' -> 'active');
SELECT jsonb_pretty(lifecycle_workflow('user') -> 'events' -> 'archive');

-- A minimal definition compiles; a refusal names the JSON path.
SELECT * FROM lifecycle._workflow_bounds('{
  "states": {"open": {"timer": {"event": "close", "after": "3 days", "to": "erased"}}},
  "events": {"start": [{"from": ["none"], "to": "open"}]}}');
SELECT pg_temp.refusal('{
  "states": {"open": {"timer": {"event": "close", "after": "0 days", "to": "erased"}}},
  "events": {"start": [{"from": ["none"], "to": "open"}]}}');

-- Every refusal: 22023 naming the JSON path.  Each case changes one thing
-- of a valid definition (first: accepted as it is).
CREATE TEMP TABLE base AS SELECT '{
  "description": "a test workflow",
  "params": {"wait": "10 days", "notes": ["2 days", "1 day"]},
  "messages": {"hello": {"subject": "Hi", "text": "Hello, {{state}}"}, "nudge": {}},
  "states": {
    "open": {"hint": "Close it first.",
             "timer": {"event": "lapse", "after": "wait", "to": "closed", "message": "hello",
                       "reminders": {"before": "notes", "event": "nudge_due", "message": "nudge"}}},
    "closed": {"timer": {"event": "purge", "after": ["wait", "1 mon"], "from": "due",
                         "to": "erased", "hook": "purge"}}
  },
  "events": {
    "start": [{"from": ["none"], "to": "open", "message": "hello"}],
    "close": [{"from": ["open"], "to": "closed", "hook": "closing"},
              {"from": ["closed"], "effect": "noop"}],
    "poke":  [{"from": ["open"], "effect": "touch"},
              {"from": ["closed"], "effect": "refuse", "hint": "It is closed."}]
  }}'::jsonb AS d;
SELECT * FROM lifecycle._workflow_bounds((SELECT d FROM base)) ORDER BY state;

SELECT n, pg_temp.refusal(def) AS refusal FROM base, LATERAL (VALUES
	-- the top level
	(1, '[]'::jsonb),
	(2, d || '{"colour": "red"}'),
	(3, d - 'states'),
	(4, d - 'events'),
	(5, d || '{"description": 1}'),
	-- params
	(10, jsonb_set(d, '{params,wait}', '"0 days"')),
	(11, jsonb_set(d, '{params,wait}', '"soon"')),
	(12, jsonb_set(d, '{params,wait}', '10')),
	(13, jsonb_set(d, '{params,notes}', '["1 day", "24 hours"]')),
	(14, jsonb_set(d, '{params,notes}', '["1 day", 2]')),
	(15, jsonb_set(d, '{params,channel}', '"1 day"')),
	(16, jsonb_set(d, '{params,Wait}', '"1 day"')),
	(17, jsonb_set(d, '{params,wait}', '"200 years"')),
	(18, jsonb_set(d, '{params,wait}', '"1 mon -1 day"')),
	-- messages
	(20, jsonb_set(d, '{messages,hello,body}', '"x"')),
	(21, jsonb_set(d, '{messages,hello}', '{"subject": "Hi"}')),
	(22, jsonb_set(d, '{messages,hello}', '"Hi"')),
	-- states
	(30, jsonb_set(d, '{states,none}', '{"timer": {}}')),
	(31, jsonb_set(d, '{states,erased}', '{}')),
	(32, jsonb_set(d, '{states,Open}', '{}')),
	(33, jsonb_set(d, ARRAY['states', repeat('s', 64)], '{}')),
	(34, jsonb_set(d, '{states,open,colour}', '"red"')),
	(35, d #- '{states,open,timer}'),
	(36, jsonb_set(d, '{states}', '{}')),
	(37, jsonb_set(d, '{states,open,hint}', 'null')),
	-- timers
	(40, jsonb_set(d, '{states,open,timer,after}', '"-1 day"')),
	(41, jsonb_set(d, '{states,open,timer,after}', '"nowhere"')),
	(42, jsonb_set(d, '{states,open,timer,after}', '"notes"')),
	(43, jsonb_set(d, '{states,open,timer,after}', '[]')),
	(44, jsonb_set(d, '{states,closed,timer,after}', '["wait", "0 days"]')),
	(45, jsonb_set(d, '{states,open,timer,from}', '"yesterday"')),
	(46, jsonb_set(d, '{states,open,timer,to}', '"limbo"')),
	(47, jsonb_set(d, '{states,open,timer,to}', '"none"')),
	(48, jsonb_set(d, '{states,open,timer,message}', '"bye"')),
	(49, jsonb_set(d, '{states,open,timer,event}', '"hold"')),
	(50, jsonb_set(d, '{states,open,timer,event}', '"close"')),
	(51, d #- '{states,open,timer,event}'),
	(52, d #- '{states,open,timer,after}'),
	(53, d #- '{states,open,timer,to}'),
	(54, jsonb_set(d, '{states,open,timer,deadline}', '5')),
	(55, jsonb_set(d, '{states,open,timer,hook}', '"Bad hook"')),
	(56, jsonb_set(d, '{states,open,timer,colour}', '1')),
	(57, jsonb_set(d, '{states,open,timer,after}', '30')),
	-- reminders
	(60, jsonb_set(d, '{states,open,timer,reminders,after}', '"notes"')),
	(61, jsonb_set(d, '{states,open,timer,reminders,before}', '"wait"')),
	(62, jsonb_set(d, '{states,open,timer,reminders,before}', '"nowhere"')),
	(63, d #- '{states,open,timer,reminders,event}'),
	(64, d #- '{states,open,timer,reminders,before}'),
	(65, jsonb_set(d, '{states,open,timer,reminders,event}', '"lapse"')),
	(66, jsonb_set(d, '{states,open,timer,reminders,event}', '"purge"')),
	(67, jsonb_set(d, '{states,open,timer,reminders,before}', '["1 day", "1 day"]')),
	(68, jsonb_set(d, '{states,open,timer,reminders,message}', '"bye"')),
	(69, jsonb_set(d, '{states,open,timer,reminders,event}', '"reminder_skipped"')),
	-- events
	(70, jsonb_set(d, '{events,hold}', '[{"from": ["open"], "effect": "noop"}]')),
	(71, jsonb_set(d, '{events,erase}', '[{"from": ["open"], "to": "erased"}]')),
	(72, jsonb_set(d, '{events,close,0,effect}', '"noop"')),
	(73, d #- '{events,close,1,effect}'),
	(74, d #- '{events,poke,1,hint}'),
	(75, jsonb_set(d, '{events,close,0,hint}', '"why"')),
	(76, jsonb_set(d, '{events,close,0,from}', '["limbo"]')),
	(77, jsonb_set(d, '{events,close,0,from}', '["erased"]')),
	(78, jsonb_set(d, '{events,close,1,effect}', '"explode"')),
	(79, jsonb_set(d, '{events,close,0,role}', '"root"')),
	(80, jsonb_set(d, '{events,poke,0,message}', '"hello"')),
	(81, jsonb_set(d, '{events,close,1,from}', '["open"]')),
	(82, jsonb_set(d, '{events,again}', '[{"from": ["none"], "to": "open"}]')),
	(83, jsonb_set(d, '{events,start,0,from}', '["closed"]')),
	(84, jsonb_set(d, '{events,start,0}', '{"from": ["none"], "effect": "noop"}')),
	(85, jsonb_set(d, '{events,close}', '[]')),
	(86, jsonb_set(d, '{events,close,0,colour}', '1')),
	(87, d #- '{events,close,0,from}'),
	(88, jsonb_set(d, '{events,close,1,role}', '"admin"')),
	(89, jsonb_set(d, '{events,lapse}', '[{"from": ["open"], "effect": "noop"}]')),
	(90, jsonb_set(d, '{events,close,0,message}', '"bye"')),
	(91, jsonb_set(d, '{events,close,0,from}', '"open"')),
	(92, jsonb_set(d, '{events,Close}', '[{"from": ["open"], "effect": "noop"}]')),
	-- the proofs: (1) reachability
	(100, jsonb_set(d, '{states,limbo}', '{"timer": {"event": "purge", "after": "1 day", "to": "erased"}}')),
	-- (2) every state reaches erased by timers alone
	(101, jsonb_set(d, '{states,closed,timer,to}', '"open"')),
	(102, jsonb_set(d, '{states,open,timer,to}', '"open"')),
	-- (3) reminders inside their window for every start date: "30 days"
	-- after the entry does not fit in "1 mon" in February
	(103, jsonb_set(jsonb_set(d, '{states,open,timer,after}', '"1 mon"'),
					'{states,open,timer,reminders}', '{"after": ["30 days"], "event": "nudge_due"}')),
	(104, jsonb_set(d, '{states,open,timer,reminders,before}', '["10 days"]')),
	-- (4) references: an unknown parameter, anchor, state, message
	(105, jsonb_set(d, '{states,closed,timer,after}', '["wait", "keep"]'))
) AS c(n, def) ORDER BY n;

-- 64 states are allowed, 65 are not.
SELECT pg_temp.refusal(jsonb_build_object(
	'states', (SELECT jsonb_object_agg('s' || i, jsonb_build_object('timer',
		jsonb_build_object('event', 'next', 'after', '1 day',
						   'to', CASE WHEN i = n THEN 'erased' ELSE 's' || (i + 1) END)))
		 FROM generate_series(1, n) i),
	'events', '{"start": [{"from": ["none"], "to": "s1"}]}'::jsonb)) AS refusal,
	n AS states
  FROM (VALUES (64), (65)) AS v(n);

-- A policy's values against the timers, refused as 0.2.0 refused a
-- policy key; the bounds follow the values.
SELECT pg_temp.refusal(lifecycle_workflow('user'), '{"invite_reminders": ["20 days"]}');
SELECT pg_temp.refusal(lifecycle_workflow('user'), '{"archive_reminders": ["30 days"], "archive_after": "1 mon"}');
SELECT pg_temp.refusal(lifecycle_workflow('user'), '{"dormant_after": "0 days"}');
SELECT pg_temp.refusal(lifecycle_workflow('user'), '{"dormant_after": ["1 day"]}');
SELECT pg_temp.refusal(lifecycle_workflow('user'), '{"respond_within": "1 day"}');
SELECT pg_temp.refusal(lifecycle_workflow('dsar'), '{"reminders": ["7 days", "1 day", "1 mon"]}');
SELECT * FROM lifecycle._workflow_bounds(lifecycle_workflow('user'),
	'{"dormant_after": "1 mon", "erase_after": "1 year", "channel": null}')
 WHERE state IN ('active', 'archived') ORDER BY state;
