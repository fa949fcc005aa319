-- Policies: versions (running users keep theirs), keys left out come from
-- "default", and every invalid definition is refused with 22023 naming
-- the key (an unknown channel: 42704), writing no version.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Version 1: only dormant_after given; the stored definition is complete.
SELECT lifecycle_define_policy('t32', '{"dormant_after": "10 days"}') AS version;
SELECT jsonb_pretty(definition) FROM lifecycle.policies WHERE name = 't32' AND version = 1;
SELECT lifecycle_invite('u1', 'u1@example.com', 't32', 't32') > 0 AS invited;
SELECT lifecycle_register('u1', 't32');

-- Version 2: only erase_after given; dormant_after comes from default
-- again (not from version 1).
SELECT lifecycle_define_policy('t32', '{"erase_after": "100 days"}') AS version;
SELECT version, definition ->> 'dormant_after' AS dormant_after,
	   definition ->> 'erase_after' AS erase_after
  FROM lifecycle.policies WHERE name = 't32' ORDER BY version;
SELECT lifecycle_invite('u2', 'u2@example.com', 't32', 't32') > 0 AS invited;
SELECT lifecycle_register('u2', 't32');

-- u1 keeps version 1 and its timers; u2 runs on version 2.
SELECT subject, policy, policy_version, next_at - last_seen AS dormant_after
  FROM lifecycle.users WHERE tenant = 't32' ORDER BY subject;
SELECT policy, policy_version FROM lifecycle_status('u1', 't32');
SELECT rt.travel('10 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT subject, state, policy_version FROM lifecycle.users WHERE tenant = 't32' ORDER BY subject;
-- Still version 1 after a third version appears: archive reminders and
-- erasure on version 1's schedule, not version 3's.
SELECT lifecycle_define_policy('t32', '{"erase_after": "50 days", "archive_after": "2 days",
	"archive_reminders": []}') AS version;
SELECT policy_version, next_event, next_at - state_since AS first_reminder_after
  FROM lifecycle.users WHERE tenant = 't32' AND subject = 'u1';
SELECT lifecycle_archive('u1', 't32');
SELECT policy_version, next_at - state_since AS erase_after FROM lifecycle.users
 WHERE tenant = 't32' AND subject = 'u1';

-- A new invitation takes the latest version.
SELECT lifecycle_invite('u3', 'u3@example.com', 't32', 't32') > 0 AS invited;
SELECT policy_version FROM lifecycle_status('u3', 't32');

-- Reminders may be given in any order; they fire in time order.
SELECT lifecycle_define_policy('t32-order', '{"invite_reminders": ["7 days", "2 days", "5 days"]}') AS version;
SELECT lifecycle_invite('u4', 'u4@example.com', 't32', 't32-order') > 0 AS invited;
SELECT next_at - state_since AS first_reminder_after FROM lifecycle.users
 WHERE tenant = 't32' AND subject = 'u4';

-- An expired invitation invited again starts over on the latest version.
SELECT rt.travel('14 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT subject, state, policy_version FROM lifecycle.users
 WHERE tenant = 't32' AND subject IN ('u3', 'u4') ORDER BY subject;
SELECT lifecycle_define_policy('t32', '{"invite_reminders": ["1 day"]}') AS version;
SELECT lifecycle_invite('u3', 'u3@example.com', 't32', 't32') > 0 AS invited_again;
SELECT state, policy_version, next_at - state_since AS first_reminder_after
  FROM lifecycle.users WHERE tenant = 't32' AND subject = 'u3';

-- Invalid definitions.
SELECT lifecycle_define_policy('t32-bad', '{"dormant_afer": "10 days"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"dormant_after": 10}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"touch_granularity": true}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"history_retention": null}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"erase_after": {"days": 3}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_reminders": "3 days"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_reminders": [3]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"archive_reminders": [["1 day"]]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"erase_after": "0 days"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"expired_erase_after": "0"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"archive_after": "-1 day"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"dormant_after": "1 day -25 hours"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"dormant_after": "1 mon -1 day"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_reminders": ["1 day", "-1 hour"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"dormant_after": "soon"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"dormant_after": ""}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"dormant_after": "1 day; DROP TABLE lifecycle.users"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"erase_after": "300 years"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_reminders": ["15 days"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_reminders": ["14 days"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_expires_after": "2 days"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"archive_reminders": ["30 days"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"archive_after": "5 days"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"invite_reminders": ["3 days", "3 days"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', jsonb_build_object('archive_after', '100 days',
	'archive_reminders', (SELECT jsonb_agg(i || ' days') FROM generate_series(1, 17) i)));
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"channel": 5}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"channel": ""}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '{"channel": "no-such-channel"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', '"10 days"');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', 'null');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t32-bad', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy(NULL, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy(repeat('p', 64), '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS bad_versions FROM lifecycle.policies
 WHERE name = 't32-bad' OR name = '' OR name = repeat('p', 64);
SELECT count(*) AS users_table_intact FROM lifecycle.users WHERE tenant = 't32';

-- Inviting under an unknown policy: 42704, nothing written.
SELECT lifecycle_invite('u5', 'u5@example.com', 't32', 't32-bad');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS u5_rows FROM lifecycle.users WHERE tenant = 't32' AND subject = 'u5';

SELECT rt.cleanup('t32') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
