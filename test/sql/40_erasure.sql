-- Erasure proof: after lifecycle_erase() no column of any table in schema
-- lifecycle holds the subject, the e-mail address or the attributes; the
-- evidence row and the (non-identifying) history remain.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Every column of every table of schema lifecycle, cast to text, searched
-- for a needle (case-insensitive).  Built from the catalog, so a table or
-- column added later is scanned too.
CREATE FUNCTION rt.pii_scan(needle text)
RETURNS TABLE (table_name name, column_name name, hits bigint)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	n bigint;
BEGIN
	FOR r IN
		SELECT c.relname, a.attname
		  FROM pg_class c
		  JOIN pg_namespace s ON s.oid = c.relnamespace
		  JOIN pg_attribute a ON a.attrelid = c.oid
		 WHERE s.nspname = 'lifecycle' AND c.relkind IN ('r', 'p')
		   AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY c.relname, a.attnum
	LOOP
		EXECUTE format('SELECT count(*) FROM lifecycle.%I WHERE strpos(lower(%I::text), lower($1)) > 0',
					   r.relname, r.attname)
		   INTO n USING needle;
		IF n > 0 THEN
			table_name := r.relname;
			column_name := r.attname;
			hits := n;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
-- A person with data in every place the extension keeps it: users (subject,
-- e-mail, attrs, region, a hook error), history, outbox payloads (pending,
-- unrouted and sent messages, a delivery error), holds.
SET client_min_messages = warning;
CREATE SCHEMA app40;
RESET client_min_messages;
CREATE TABLE app40.refuse (subject text);
CREATE FUNCTION app40.on_archive(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM app40.refuse r WHERE r.subject = on_archive.subject) THEN
		RAISE EXCEPTION 'cannot archive % (%)', subject, tenant;
	END IF;
END
$$;
SELECT lifecycle_define_policy('t40', '{"channel": "t20-hook",
	"hooks": {"archive": "app40.on_archive"}}') AS version;
SELECT lifecycle_invite('Zq-Subject-7781', 'zq.person.7781@example.org', 't40', 't40', 'eu',
	'{"name": "Zqname Zqsurname", "phone": "+41 79 000 77 81",
	  "contact": "zq.person.7781@example.org"}') > 0 AS invited;
SELECT lifecycle_invite('other-40', 'other.40@example.org', 't40', 't40') > 0 AS invited;
SELECT rt.travel('3 days 1 minute');
SELECT lifecycle_tick() AS transitions;                  -- invite reminders
SELECT lifecycle_register(s, 't40') FROM unnest(ARRAY['Zq-Subject-7781', 'other-40']) s;
SELECT lifecycle_hold('Zq-Subject-7781', 't40', 'audit 2026-11');
SELECT lifecycle_release('Zq-Subject-7781', 't40');
SELECT lifecycle_complete(s, 't40') FROM unnest(ARRAY['Zq-Subject-7781', 'other-40']) s;
INSERT INTO app40.refuse VALUES ('Zq-Subject-7781');
SELECT rt.travel('30 days 1 minute');
SELECT lifecycle_tick() AS transitions;                  -- archive fails for Zq
-- Stand-ins for the sender: one message delivered, one with a delivery error.
UPDATE lifecycle.outbox SET status = 'sent', sent_at = created_at, attempts = 1
 WHERE id = (SELECT min(o.id) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
			  WHERE u.subject = 'Zq-Subject-7781');
UPDATE lifecycle.outbox SET attempts = 1,
	   last_error = '550 mailbox zq.person.7781@example.org unavailable'
 WHERE id = (SELECT max(o.id) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
			  WHERE u.subject = 'Zq-Subject-7781');
SELECT id AS zq_id FROM lifecycle.users WHERE tenant = 't40' AND subject = 'Zq-Subject-7781' \gset
SELECT state, retries, last_error FROM lifecycle.users WHERE id = :zq_id;
SELECT o.message, o.status, o.channel, o.last_error IS NOT NULL AS has_error
  FROM lifecycle.outbox o WHERE o.user_id = :zq_id ORDER BY o.id;

-- Before erasure the scan finds the person (so it can see).
SELECT * FROM rt.pii_scan('Zq-Subject-7781');
SELECT * FROM rt.pii_scan('zq.person.7781@example.org');
SELECT * FROM rt.pii_scan('Zqname');
SELECT * FROM rt.pii_scan('+41 79 000 77 81');

-- Erase.
SELECT count(*) AS history_rows FROM lifecycle.history WHERE user_id = :zq_id \gset
SELECT lifecycle_erase('Zq-Subject-7781', 't40', 'GDPR art. 17 request') AS evidence_id \gset

-- After erasure: nothing, anywhere in schema lifecycle.
SELECT * FROM rt.pii_scan('Zq-Subject-7781');
SELECT * FROM rt.pii_scan('zq.person.7781@example.org');
SELECT * FROM rt.pii_scan('zq.person.7781');
SELECT * FROM rt.pii_scan('Zqname');
SELECT * FROM rt.pii_scan('+41 79 000 77 81');
SELECT count(*) AS needle_hits FROM (
	SELECT * FROM rt.pii_scan('Zq-Subject-7781') UNION ALL
	SELECT * FROM rt.pii_scan('zq.person.7781@example.org')) s;

-- The evidence remains and identifies no one; history remains (no e-mail,
-- no attrs); undelivered messages are cancelled, payloads scrubbed.
SELECT e.id = :evidence_id AS returned_id, e.user_id = :zq_id AS same_user, e.tenant, e.policy, e.reason, e.state_before,
	   e.requested_by = session_user AS by_caller
  FROM lifecycle.erasures e WHERE e.user_id = :zq_id;
SELECT count(*) - :history_rows AS new_history_rows FROM lifecycle.history WHERE user_id = :zq_id;
SELECT event, from_state, to_state FROM rt.hist(:zq_id) OFFSET 8;
SELECT subject, email, attrs, region, hold_reason, last_error, retry_at, state, next_at
  FROM lifecycle.users WHERE id = :zq_id;
SELECT o.message, o.status, o.payload, o.last_error
  FROM lifecycle.outbox o WHERE o.user_id = :zq_id ORDER BY o.id;
-- The other user of the tenant is untouched.
SELECT subject, email, state FROM lifecycle.users WHERE tenant = 't40' AND subject = 'other-40';
SELECT count(*) AS other_scrubbed FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.subject = 'other-40' AND o.payload = '{}';

-- The erased subject can come back as a new person; the old row stays
-- anonymous.
SELECT lifecycle_invite('Zq-Subject-7781', 'zq.new@example.org', 't40') <> :zq_id AS new_id;
SELECT subject FROM lifecycle.users WHERE id = :zq_id;

SELECT rt.cleanup('t40') AS erased;
SELECT * FROM rt.pii_scan('zq.new@example.org');
SELECT * FROM rt.pii_scan('Zq-Subject-7781');
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
