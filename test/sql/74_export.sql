-- lifecycle_export(): everything held about a subject as one document,
-- itself recorded in history.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE ROLE cmp_ex_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_ex_limited LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_ex_auditor LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('cmp_ex_limited', 't74-other');

SELECT lifecycle_invite('e1', 'e1@example.com', 't74', 'default', 'eu',
						'{"name": "Ada"}') > 0 AS invited;
SELECT lifecycle_register('e1', 't74');
SELECT lifecycle_complete('e1', 't74');

SET ROLE cmp_ex_app;
CREATE TEMP TABLE doc AS SELECT lifecycle_export('e1', 't74') AS d;
RESET ROLE;
SELECT d ->> 'subject' AS subject, d ->> 'tenant' AS tenant,
	   d ->> 'email' AS email, d -> 'attrs' AS attrs, d ->> 'region' AS region,
	   d ->> 'state' AS state, d ->> 'held' AS held, d ->> 'next_event' AS next_event,
	   (d ->> 'state_since')::timestamptz = u.state_since AS since_ok,
	   (d ->> 'last_seen')::timestamptz = u.last_seen AS seen_ok,
	   (d ->> 'created_at')::timestamptz = u.created_at AS created_ok
  FROM doc, lifecycle.users u WHERE u.id = rt.uid('e1', 't74');
-- The policy version and its intervals (not its hooks or channel).
SELECT d -> 'policy' ->> 'name' AS policy, d -> 'policy' ->> 'version' AS version,
	   d -> 'policy' -> 'intervals' ->> 'archive_after' AS archive_after,
	   d -> 'policy' -> 'intervals' ? 'hooks' AS has_hooks
  FROM doc;
-- The history, export included, oldest first.
SELECT h ->> 'event' AS event, h ->> 'from_state' AS from_state,
	   h ->> 'to_state' AS to_state, h ->> 'actor' AS actor
  FROM doc, jsonb_array_elements(d -> 'history') h;
-- The messages with their payloads.
SELECT m ->> 'message' AS message, m ->> 'status' AS status,
	   m -> 'payload' ->> 'email' AS payload_email, m -> 'payload' -> 'attrs' AS payload_attrs
  FROM doc, jsonb_array_elements(d -> 'messages') m;
SELECT event, actor FROM lifecycle.history
 WHERE user_id = rt.uid('e1', 't74') AND event = 'export';

-- Errors.
SELECT lifecycle_export(NULL, 't74');
SELECT lifecycle_export('e1', NULL);
SELECT lifecycle_export('nobody', 't74');
SET ROLE cmp_ex_limited;
SELECT lifecycle_export('e1', 't74');
RESET ROLE;
SET ROLE cmp_ex_auditor;
SELECT lifecycle_export('e1', 't74');
RESET ROLE;
SELECT count(*) AS exports FROM lifecycle.history
 WHERE user_id = rt.uid('e1', 't74') AND event = 'export';
-- An erased subject is unknown: nothing about it is left to export.
SELECT lifecycle_erase('e1', 't74') > 0 AS erased;
SELECT lifecycle_export('e1', 't74');
