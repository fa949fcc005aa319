-- The pure state machine (src/machine.c), every (state, event, held) triple,
-- through lifecycle._machine_step(state, event, held, policy).  'none' is
-- a subject without a row; archive_due and erase_due are the archive and
-- erase timers (the calls are archive and erase); hold and release are
-- events of the machine too.
\set SHOW_CONTEXT never
CREATE TEMP VIEW states(state, so) AS
	SELECT * FROM unnest(ARRAY['none', 'invited', 'active', 'dormant', 'completed',
							   'archived', 'expired', 'erased']) WITH ORDINALITY;
-- Every event of the table, in the order lifecycle.transitions() first
-- names it (src/machine.c is the only copy of the graph).
CREATE TEMP VIEW events(event, eo) AS
	SELECT t.event, min(t.o) FROM lifecycle.transitions() WITH ORDINALITY AS t(
		from_state, event, kind, role, to_state, effect, message, hook, erases,
		stopped_by_hold, anchor, interval_key, "interval", reminders,
		reminders_before_deadline, deadline_event, hint, o)
	 GROUP BY t.event;
CREATE TEMP VIEW steps AS
SELECT s.state, e.event, h.held, m.*, s.so, e.eo
  FROM states s CROSS JOIN events e CROSS JOIN (VALUES (false), (true)) AS h(held)
 CROSS JOIN LATERAL lifecycle._machine_step(s.state, e.event, h.held, 'default') m;

-- The whole table: 8 states x 16 events x held.
SELECT state, event, held, allowed, noop, to_state, message, hook, erase,
	   next_event, hint
  FROM steps ORDER BY so, eo, held;

-- README.md's transition table, written out: exactly these (state, event)
-- pairs transition when not held, with exactly these effects.
CREATE TEMP TABLE design(state text, event text, to_state text, message text,
						 hook text, erase boolean);
INSERT INTO design VALUES
	('none', 'invite', 'invited', 'invite', NULL, false),
	('expired', 'invite', 'invited', 'invite', NULL, false),
	('invited', 'invite_reminder', 'invited', 'invite_reminder', NULL, false),
	('invited', 'expire', 'expired', NULL, NULL, false),
	('invited', 'register', 'active', NULL, NULL, false),
	('active', 'touch', 'active', NULL, NULL, false),
	('active', 'dormant', 'dormant', 'archive_notice', NULL, false),
	('active', 'complete', 'completed', 'archive_notice', NULL, false),
	('dormant', 'complete', 'completed', 'archive_notice', NULL, false),
	('dormant', 'touch', 'active', NULL, NULL, false),
	('completed', 'touch', 'active', NULL, NULL, false),
	('dormant', 'archive_reminder', 'dormant', 'archive_reminder', NULL, false),
	('completed', 'archive_reminder', 'completed', 'archive_reminder', NULL, false),
	('dormant', 'archive_due', 'archived', 'archived', 'archive', false),
	('completed', 'archive_due', 'archived', 'archived', 'archive', false),
	('active', 'archive', 'archived', 'archived', 'archive', false),
	('dormant', 'archive', 'archived', 'archived', 'archive', false),
	('completed', 'archive', 'archived', 'archived', 'archive', false),
	('invited', 'archive', 'archived', 'archived', 'archive', false),
	('archived', 'restore', 'active', 'restored', 'restore', false),
	('dormant', 'restore', 'active', 'restored', 'restore', false),
	('completed', 'restore', 'active', 'restored', 'restore', false),
	('archived', 'erase_due', 'erased', NULL, 'erase', true),
	('expired', 'erase_due', 'erased', NULL, 'erase', true),
	('invited', 'erase', 'erased', NULL, 'erase', true),
	('active', 'erase', 'erased', NULL, 'erase', true),
	('dormant', 'erase', 'erased', NULL, 'erase', true),
	('completed', 'erase', 'erased', NULL, 'erase', true),
	('archived', 'erase', 'erased', NULL, 'erase', true),
	('expired', 'erase', 'erased', NULL, 'erase', true),
	('invited', 'hold', 'invited', NULL, NULL, false),
	('active', 'hold', 'active', NULL, NULL, false),
	('dormant', 'hold', 'dormant', NULL, NULL, false),
	('completed', 'hold', 'completed', NULL, NULL, false),
	('archived', 'hold', 'archived', NULL, NULL, false),
	('expired', 'hold', 'expired', NULL, NULL, false);

-- Differences between the machine and the table (both ways): none.
(SELECT state, event, to_state, message, hook, erase FROM steps
  WHERE NOT held AND allowed AND NOT noop
 EXCEPT SELECT * FROM design)
UNION ALL
(SELECT * FROM design
 EXCEPT SELECT state, event, to_state, message, hook, erase FROM steps
  WHERE NOT held AND allowed AND NOT noop);

-- The idempotent calls of the decisions: held or not, they change nothing.
SELECT state, event, count(*) FILTER (WHERE allowed AND noop) AS noop_of_2
  FROM steps WHERE noop OR (state, event) IN (VALUES
	('invited', 'invite'), ('active', 'invite'), ('dormant', 'invite'),
	('completed', 'invite'), ('active', 'register'), ('completed', 'complete'),
	('archived', 'archive'), ('active', 'restore'))
 GROUP BY state, event, so, eo ORDER BY so, eo;

-- Every refusal carries a HINT naming a lifecycle_*() call.
SELECT count(*) AS refused, count(*) FILTER (WHERE hint ~ 'lifecycle_[a-z]+\(\)') AS with_hint
  FROM steps WHERE NOT allowed;

-- A legal hold stops every timer and erasure that would otherwise happen
-- (HINT lifecycle_release()) and nothing else; only a held user's hold lapses.
SELECT u.state, u.event, h.allowed, h.hint
  FROM steps u JOIN steps h USING (state, event)
 WHERE NOT u.held AND h.held AND u.allowed IS DISTINCT FROM h.allowed
 ORDER BY u.so, u.eo;

-- Next timers after a transition (default policy: two reminders each).
SELECT state, event, to_state, next_event FROM steps
 WHERE NOT held AND allowed AND NOT noop ORDER BY so, eo;

-- A policy without reminders goes straight to expiry and archiving.
SELECT lifecycle_define_policy('m_plain',
	'{"invite_reminders": [], "archive_reminders": []}') AS version;
SELECT s.state, s.event, m.to_state, m.next_event
  FROM (VALUES ('none', 'invite'), ('expired', 'invite'), ('active', 'dormant'),
			   ('active', 'complete'), ('invited', 'archive'),
			   ('dormant', 'hold_lapse')) AS s(state, event),
	   LATERAL lifecycle._machine_step(s.state, s.event, s.state = 'dormant', 'm_plain') m
 ORDER BY 1, 2;

-- lifecycle.transitions() shows the same table the machine runs: every
-- edge it lists as a transition is one _machine_step() allows (held for
-- release and hold_lapse), with the same target, message and hook.
SELECT t.from_state, t.event, t.effect, t.to_state, m.to_state AS machine_to
  FROM lifecycle.transitions() t
 CROSS JOIN LATERAL lifecycle._machine_step(t.from_state, t.event,
		t.event IN ('release', 'hold_lapse'), 'default') m
 WHERE t.effect NOT IN ('noop', 'refused')
   AND (NOT m.allowed OR m.to_state IS DISTINCT FROM t.to_state
		OR m.message IS DISTINCT FROM t.message OR m.hook IS DISTINCT FROM t.hook);

-- No call and timer share a name; every timer but the lapse of a hold
-- names the interval it counts with or its reminders.
SELECT event FROM lifecycle.transitions() GROUP BY event HAVING count(DISTINCT kind) > 1;
SELECT from_state, event, anchor, interval_key, "interval", reminders,
	   reminders_before_deadline, deadline_event
  FROM lifecycle.transitions() WHERE kind = 'timer' ORDER BY 1, 2;

-- Unknown states, events and policies.
SELECT * FROM lifecycle._machine_step('bogus', 'touch', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle._machine_step('active', 'explode', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle._machine_step('active', 'touch', false, 'no_such_policy');
\echo :LAST_ERROR_SQLSTATE
