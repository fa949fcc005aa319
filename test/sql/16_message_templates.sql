-- Message templates come from the workflow definition (docs/WORKFLOWS.md,
-- "messages"): placeholders are checked when a workflow is defined
-- (22023 naming the JSON path), and lifecycle._render_mail() renders a
-- message over its workflow's own template as the sender does.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- SQLSTATE and message of a refused definition (NULL: accepted).
CREATE FUNCTION pg_temp.refusal(definition jsonb)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lifecycle._workflow_bounds(definition);
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The e-mail without its Date header (the time of rendering), one row a
-- line; every line ended in CRLF.
CREATE FUNCTION pg_temp.lines(mail text)
RETURNS TABLE (n bigint, line text) LANGUAGE sql AS $$
	SELECT n, regexp_replace(l, '^Date: .*$', 'Date: (now)')
	  FROM regexp_split_to_table(mail, E'\r\n') WITH ORDINALITY AS x(l, n)
$$;

CREATE TEMP TABLE base AS SELECT '{
  "params": {"wait": "10 days"},
  "messages": {"hello": {"subject": "Hello {{attrs.name}}", "text": "Your {{state}} item."},
               "bare": {}},
  "states": {
    "open": {"timer": {"event": "lapse", "after": "wait", "to": "erased", "message": "bare"}}
  },
  "events": {"start": [{"from": ["none"], "to": "open", "message": "hello"}]}}'::jsonb AS d;

-- Every placeholder a template may use, with spaces inside the braces,
-- and braces that are not placeholders.
SELECT pg_temp.refusal(jsonb_set(d, '{messages,hello}', '{
  "subject": "{{ tenant }}: {{workflow}} {{key}} {{state}} by {{deadline_date}}",
  "text": "{{id}} {{message}} {{subject}} {{tenant}} {{email}} {{region}} {{policy}} {{state}} {{workflow}} {{key}} {{link_base}} {{deadline_at}} {{deadline_date}} {{archive_at}} {{archive_date}} {{attrs.name}} {{attrs.a.b-c_1}} {single} }}"}'))
  AS all_placeholders
  FROM base;

-- Refusals: 22023, the path of the subject or text, what is wrong.
SELECT n, pg_temp.refusal(jsonb_set(d, '{messages,hello}', t)) AS refusal
  FROM base, LATERAL (VALUES
	(1, '{"subject": "Hi", "text": "Dear {{nmae}},"}'::jsonb),
	(2, '{"subject": "Hi {{name}}", "text": "x"}'),
	(3, '{"subject": "Hi", "text": "Dear {{attrs.}}"}'),
	(4, '{"subject": "Hi", "text": "Due {{deadline_at"}'),
	(5, '{"subject": "Hi", "text": "{{ }}"}'),
	(6, '{"subject": "Hi", "text": "{{state; DROP TABLE lifecycle.users}}"}'),
	(7, '{"subject": "Hi", "text": "{{attrs.name)||pg_sleep(10)--}}"}'),
	(8, jsonb_build_object('subject', 'Hi', 'text', '{{attrs.' || repeat('x', 60) || '}}')),
	(9, '{"subject": "Hi\nBcc: someone@example.com", "text": "x"}'),
	(10, '{"subject": "Hi\r", "text": "x"}'),
	(11, '{"subject": "Hi", "text": "{{{{state}}}}"}'),
	(12, '{"subject": "Hi", "text": 12}'),
	(13, '{"subject": "Hi"}'),
	(14, '{"subject": "Hi", "body": "x"}')) AS c(n, t)
 ORDER BY n;

-- Through the API: refused with its path, nothing stored.
SELECT lifecycle_define_workflow('t16_bad', jsonb_set(d, '{messages,hello,text}', '"{{emial}}"'))
  FROM base;
SELECT count(*) AS stored FROM lifecycle.workflows WHERE name = 't16_bad';

-- Rendering.  The user workflow's invite over its own template (0.2.0's
-- text, byte for byte: test/t/260_smtp.pl sends it).
SELECT * FROM pg_temp.lines(lifecycle._render_mail('user', 'invite',
	'{"subject": "ann", "tenant": "acme", "email": "ann@example.com", "state": "invited",
	  "policy": "default", "attrs": {}}',
	'{"from": "no-reply@example.com", "link_base": "https://app.example.com/join"}'));
-- The channel's templates still come first.
SELECT line FROM pg_temp.lines(lifecycle._render_mail('user', 'invite',
	'{"tenant": "acme", "email": "ann@example.com", "policy": "default", "attrs": {}}',
	'{"from": "a@example.com", "templates": {"invite": {"subject": "Join {{tenant}}"}}}'))
 WHERE line LIKE 'Subject:%' OR n > 10;

-- A custom workflow's template; a value is copied, never read again for
-- placeholders (an attr holding "{{email}}" stays that text).
BEGIN;
SELECT lifecycle_define_workflow('t16_flow', d) FROM base;
SELECT line FROM pg_temp.lines(lifecycle._render_mail('t16_flow', 'hello',
	'{"email": "bo@example.com", "state": "open", "attrs": {"name": "{{email}} {{state}}"}}'))
 WHERE line ~ '^(Subject|X-Lifecycle-Message):' OR n > 10;
-- A message declared without a template renders as its name.
SELECT line FROM pg_temp.lines(lifecycle._render_mail('t16_flow', 'bare',
	'{"email": "bo@example.com"}'))
 WHERE line LIKE 'Subject:%' OR n > 10;
ROLLBACK;

-- The deadline a message announces: the payload's deadline_at, else the
-- notice's archive_at; deadline_date is its day.
SELECT line FROM pg_temp.lines(lifecycle._render_mail('dsar', 'request_received',
	'{"email": "cy@example.com", "archive_at": "2027-03-31T09:30:00+00:00", "attrs": {}}'))
 WHERE line ~ 'latest by';
SELECT line FROM pg_temp.lines(lifecycle._render_mail('dsar', 'request_reminder',
	'{"email": "cy@example.com", "deadline_at": "2027-04-01T00:00:00+00:00",
	  "archive_at": "2027-03-31T09:30:00+00:00", "attrs": {}}'))
 WHERE line LIKE 'Subject:%';

-- Errors.
SELECT lifecycle._render_mail('t16_none', 'hello', '{}');
SELECT lifecycle._render_mail('dsar', 'invite', '{}');
SELECT lifecycle._render_mail('dsar', NULL, '{}');
SELECT lifecycle._render_mail('dsar', 'request_received', '[]');

-- A channel's templates may name any workflow's message, no other.
BEGIN;
SELECT lifecycle_add_channel('t16_mail', 'smtp', 'smtp://mail.example.com', NULL,
	'{"from": "a@example.com", "templates": {"request_received": {"subject": "Got it"},
	  "archive_notice": {"body": "x"}}}');
SELECT lifecycle_add_channel('t16_mail2', 'smtp', 'smtp://mail.example.com', NULL,
	'{"from": "a@example.com", "policy_templates": {"p": {"nope": {"subject": "x"}}}}');
ROLLBACK;

-- Only admins may render.
SET ROLE lifecycle_auditor;
SELECT lifecycle._render_mail('dsar', 'request_received', '{}');
RESET ROLE;
