-- lifecycle.transitions(workflow) and lifecycle_graph(policy) for any
-- workflow (README.md, "SQL API"): the graph of a workflow version with
-- the numbers of its own policy; 0.2.0's policy form still works; the DOT
-- of a custom workflow's policy.  Everything is rolled back at the end.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SET timezone = 'UTC';
BEGIN;

-- The 0.2.0 call forms: no argument (now the user workflow, at the
-- numbers of "default"), a policy's name, a policy's name and version;
-- all the same rows for the default policy.
SELECT (SELECT count(*) FROM lifecycle.transitions()) AS user_rows,
	   (SELECT count(*) FROM (
			(SELECT * FROM lifecycle.transitions() EXCEPT ALL
			 SELECT * FROM lifecycle.transitions('default'))
			UNION ALL
			(SELECT * FROM lifecycle.transitions('default', 1) EXCEPT ALL
			 SELECT * FROM lifecycle.transitions('user'))) d) AS differences;

-- A custom workflow; one of its states is named like a DOT keyword.
SELECT lifecycle_define_workflow('t17_review', '{
  "params": {"every": "3 mons", "notice": ["14 days"], "keep": "30 days"},
  "messages": {"review_due": {}},
  "states": {
    "granted": {"timer": {"event": "review_lapse", "after": "every", "to": "node",
                          "deadline": "review",
                          "reminders": {"before": "notice", "event": "review_reminder",
                                        "message": "review_due"}}},
    "node": {"timer": {"event": "purge_due", "after": "keep", "from": "due", "to": "erased"}}
  },
  "events": {
    "grant": [{"from": ["none", "node"], "to": "granted"}],
    "revoke": [{"from": ["granted"], "to": "node", "role": "admin"},
               {"from": ["node"], "effect": "noop", "role": "admin"}]
  }}') AS version;

-- Its graph, at the numbers of its own policy (created with it).
SELECT from_state, event, kind, role, to_state, effect, message, anchor,
	   interval_key, "interval", reminders, reminders_before_deadline, deadline_event
  FROM lifecycle.transitions('t17_review') WITH ORDINALITY t
 WHERE event NOT IN ('hold', 'release', 'hold_lapse', 'erase', 'export', 'update',
					 'migrate', 'adopt', 'reminder_skipped')
 ORDER BY ordinality;

-- Another policy of the workflow: the policy form shows its numbers, the
-- workflow form still those of the workflow's own policy, until that
-- policy changes.
SELECT lifecycle_define_policy('t17_fast', '{"workflow": "t17_review", "every": "1 mon"}');
SELECT (SELECT "interval" FROM lifecycle.transitions('t17_fast') WHERE event = 'review_lapse') AS fast,
	   (SELECT "interval" FROM lifecycle.transitions('t17_review') WHERE event = 'review_lapse') AS own;
SELECT lifecycle_define_policy('t17_review', '{"every": "2 mons"}');
SELECT "interval" AS own_after_change
  FROM lifecycle.transitions('t17_review') WHERE event = 'review_lapse';

-- A second version: the latest by default, the first by number.
SELECT lifecycle_define_workflow('t17_review',
	jsonb_set(lifecycle_workflow('t17_review'), '{events,confirm}',
			  '[{"from": ["granted"], "to": "granted"}]')) AS version;
SELECT (SELECT count(*) FROM lifecycle.transitions('t17_review') WHERE event = 'confirm') AS latest,
	   (SELECT count(*) FROM lifecycle.transitions('t17_review', 1) WHERE event = 'confirm') AS first;

-- The built-in dsar workflow has no policy yet: its definition's numbers.
SELECT from_state, event, to_state, "interval", reminders
  FROM lifecycle.transitions('dsar') WHERE kind = 'timer' ORDER BY from_state, event;

-- Refusals.
SELECT * FROM lifecycle.transitions('t17_review', 3);
SELECT * FROM lifecycle.transitions('t17_nope');
SELECT * FROM lifecycle.transitions(NULL);
SELECT * FROM lifecycle.transitions('t17_fast', 2);

-- The DOT of a custom workflow's policy: its states (nearest the start
-- first, erased last; "node" quoted), its timers with the policy's values.
SELECT lifecycle_graph('t17_fast');

-- The user workflow's nodes keep their names and order of distance.
SELECT regexp_replace(line, '\\n\d+', '\n#') AS node
  FROM regexp_split_to_table(lifecycle_graph(), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE line ~ '^  \w+ \[label' ORDER BY n;

-- Auditors read both; the internal function is the graph's alone.
SET ROLE lifecycle_auditor;
SELECT count(*) > 0 AS auditor_reads FROM lifecycle.transitions('t17_review');
SELECT lifecycle_graph('t17_review') LIKE 'digraph%' AS auditor_draws;
SELECT count(*) FROM lifecycle._policy_transitions('t17_review');
RESET ROLE;

ROLLBACK;
