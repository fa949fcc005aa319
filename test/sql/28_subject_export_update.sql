-- Subject-wide export and update (issue 18): lifecycle_export() returns
-- every live instance of the subject with its history and messages under
-- "instances" (the user lifecycle's 0.2.0 keys stay at the top level; a
-- subject without one gets its shared data there), the export recorded in
-- each; lifecycle_update() changes the subject's shared e-mail, attrs and
-- region in every live instance and their pending payloads, one history
-- row per instance changed; a policy applies to the user lifecycle only.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

\set note '{"messages": {"note_filed": {"subject": "Your note", "text": "Hello {{attrs.name}}."}}, "states": {"open": {"timer": {"event": "close_due", "after": "30 days", "to": "closed"}}, "closed": {"timer": {"event": "purge", "after": "30 days", "from": "due", "to": "erased"}}}, "events": {"file": [{"from": ["none"], "to": "open", "message": "note_filed"}], "close": [{"from": ["open"], "to": "closed"}]}}'
SELECT lifecycle_define_workflow('t28_note', :'note') AS version;

-- Subject e1: the user lifecycle and two notes with their own data.
SELECT lifecycle_invite('e1', 'e1@example.com', 't28', 'default', 'eu', '{"name": "Eve"}') > 0 AS invited;
SELECT lifecycle_register('e1', 't28') AS registered;
SELECT lifecycle_start('t28_note', 'e1', 't28', data => '{"topic": "billing"}') > 0 AS started;
SELECT lifecycle_start('t28_note', 'e1', 't28', key => 'b', data => '{"topic": "privacy"}') > 0 AS started;
SELECT lifecycle_signal('t28_note', 'e1', 'close', 't28', key => 'b') AS state;

-- Export: the 0.2.0 document of the user lifecycle, plus "instances".
CREATE TEMP TABLE doc AS SELECT lifecycle_export('e1', 't28') AS d;
SELECT array_agg(k ORDER BY k) AS keys FROM doc, jsonb_object_keys(d) k;
SELECT d ->> 'subject' AS subject, d ->> 'email' AS email, d ->> 'state' AS state,
	   d -> 'policy' ->> 'name' AS policy,
	   jsonb_array_length(d -> 'instances') AS instances FROM doc;
SELECT array_agg(h ->> 'event' ORDER BY n) AS user_history
  FROM doc, jsonb_array_elements(d -> 'history') WITH ORDINALITY AS x(h, n);
SELECT i ->> 'workflow' AS workflow, i ->> 'key' AS key, i ->> 'state' AS state,
	   i -> 'data' AS data, i -> 'policy' ->> 'name' AS policy,
	   (SELECT array_agg(h ->> 'event' ORDER BY n)
		  FROM jsonb_array_elements(i -> 'history') WITH ORDINALITY AS x(h, n)) AS history,
	   (SELECT array_agg((m ->> 'message') || ':' || (m -> 'payload' ->> 'email'))
		  FROM jsonb_array_elements(i -> 'messages') m) AS messages
  FROM doc, jsonb_array_elements(d -> 'instances') i ORDER BY (i ->> 'id')::bigint;
SELECT array_agg(k ORDER BY k) AS instance_keys
  FROM doc, jsonb_object_keys(d -> 'instances' -> 0) k;
-- Recorded once in every instance, by the caller.
SELECT u.workflow, u.key, count(*) AS exports, min(h.actor) = current_user AS by_caller
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't28' AND u.subject = 'e1' AND h.event = 'export'
 GROUP BY u.id, u.workflow, u.key ORDER BY u.id;

-- Subject f1 has only notes: the shared data at the top level.
SELECT lifecycle_start('t28_note', 'f1', 't28', email => 'f1@example.com',
					   region => 'eu', attrs => '{"name": "Fay"}') > 0 AS started;
SELECT array_agg(k ORDER BY k) AS keys FROM lifecycle_export('f1', 't28') d, jsonb_object_keys(d) k;
SELECT d ->> 'subject' AS subject, d ->> 'tenant' AS tenant, d ->> 'email' AS email,
	   d -> 'attrs' AS attrs, d ->> 'region' AS region,
	   jsonb_array_length(d -> 'instances') AS instances,
	   d -> 'instances' -> 0 -> 'history' -> -1 ->> 'event' AS last_event
  FROM lifecycle_export('f1', 't28') d;

-- Update: the shared data changes in every instance, with the pending
-- payloads; history names the fields, never the values.
SELECT lifecycle_update('e1', 't28', email => 'e1.new@example.com',
						attrs => '{"name": "Eva"}') AS state;
SELECT workflow, key, email, attrs, region FROM lifecycle.users
 WHERE tenant = 't28' AND subject = 'e1' ORDER BY id;
SELECT u.workflow, u.key, h.detail FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't28' AND u.subject = 'e1' AND h.event = 'update' ORDER BY u.id;
SELECT u.workflow, o.message, o.status, o.payload ->> 'email' AS email,
	   o.payload -> 'attrs' AS attrs
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't28' AND u.subject = 'e1' ORDER BY o.id;
-- The same values again: nothing written.
SELECT lifecycle_update('e1', 't28', email => 'e1.new@example.com') AS state;
SELECT count(*) AS update_rows FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't28' AND u.subject = 'e1' AND h.event = 'update';
-- A policy moves the user lifecycle only; the notes keep theirs.
SELECT lifecycle_define_policy('t28_user', '{"dormant_after": "60 days"}') > 0 AS defined;
SELECT lifecycle_update('e1', 't28', region => 'us', policy => 't28_user') AS state;
SELECT workflow, key, policy, region FROM lifecycle.users
 WHERE tenant = 't28' AND subject = 'e1' ORDER BY id;
SELECT u.workflow, u.key, h.detail FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't28' AND u.subject = 'e1' AND h.event = 'update'
   AND h.detail -> 'fields' ? 'region' ORDER BY u.id;
-- A new instance takes the subject's updated data.
SELECT lifecycle_start('t28_note', 'e1', 't28', key => 'c') > 0 AS started;
SELECT count(DISTINCT (email, attrs, region)) AS one_set, min(email) AS email
  FROM lifecycle.users WHERE tenant = 't28' AND subject = 'e1';

-- Without a user lifecycle: no policy to change (22023); the shared data
-- changes; the result is the first instance's state.
SELECT lifecycle_update('f1', 't28', policy => 'default');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t28_note', 'f1', 't28', key => 'second') > 0 AS started;
SELECT lifecycle_update('f1', 't28', region => 'us') AS state;
SELECT key, email, region FROM lifecycle.users WHERE tenant = 't28' AND subject = 'f1' ORDER BY id;
SELECT lifecycle_update('nobody', 't28', region => 'us');
\echo :LAST_ERROR_SQLSTATE

-- Erased: nothing left to export or update.
SELECT lifecycle_erase('e1', 't28', 'test cleanup') > 0 AS erased;
SELECT lifecycle_erase('f1', 't28', 'test cleanup') > 0 AS erased;
SELECT lifecycle_export('e1', 't28');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_update('f1', 't28', region => 'eu');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS live FROM lifecycle.users WHERE tenant = 't28' AND state <> 'erased';
