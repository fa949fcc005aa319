-- Erasure proof: after erasure (by lifecycle_erase and by the timer), no
-- text or jsonb column of any table in schema lifecycle contains the
-- subject's identifier, e-mail or personal attributes, although messages
-- carrying them sat in the outbox; the evidence row remains and says
-- when, why and by whom (the role), not who.
CREATE ROLE cmp_e_app LOGIN IN ROLE lifecycle_app;
SELECT lifecycle_define_policy('cmp_ep', '{"invite_reminders": [],
  "dormant_after": "2 days", "archive_after": "2 days",
  "archive_reminders": ["1 day"], "erase_after": "2 days"}') > 0 AS defined;

-- The needles: what must vanish.
CREATE TEMP TABLE cmp_needles (who text, needle text);
INSERT INTO cmp_needles VALUES
 ('request', 'zelda-4711-req'), ('request', 'zelda.needleman@example.net'),
 ('request', 'Zelda Needleman'), ('request', '+41 79 555 12 34'),
 ('request', 'Needlestrasse 5'),
 ('timer', 'yorick-0815-tmr'), ('timer', 'yorick@example.org'),
 ('timer', 'Yorick Haystack'), ('timer', '1970-01-01 born');

-- A scan of every text, varchar, name and json(b) column of every table
-- of the extension: which needles are left, where?
CREATE FUNCTION pg_temp.cmp_scan(which text)
RETURNS TABLE (tab text, col text, needle text)
LANGUAGE plpgsql AS $$
DECLARE
	c record;
	n record;
	hits bigint;
BEGIN
	FOR c IN
		SELECT cl.relname, a.attname
		  FROM pg_class cl JOIN pg_attribute a ON a.attrelid = cl.oid
		 WHERE cl.relnamespace = 'lifecycle'::regnamespace AND cl.relkind = 'r'
		   AND a.attnum > 0 AND NOT a.attisdropped
		   AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'name'::regtype,
							  'json'::regtype, 'jsonb'::regtype, 'text[]'::regtype)
		 ORDER BY 1, 2
	LOOP
		FOR n IN SELECT x.needle FROM cmp_needles x WHERE x.who = which LOOP
			EXECUTE format('SELECT count(*) FROM lifecycle.%I WHERE %I::text ILIKE %L',
						   c.relname, c.attname, '%' || n.needle || '%') INTO hits;
			IF hits > 0 THEN
				tab := c.relname; col := c.attname; needle := n.needle;
				RETURN NEXT;
			END IF;
		END LOOP;
	END LOOP;
END
$$;
-- Tables and columns the scan covers (it must grow with the extension).
SELECT count(DISTINCT cl.relname) >= 8 AS tables, count(*) >= 20 AS columns
  FROM pg_class cl JOIN pg_attribute a ON a.attrelid = cl.oid
 WHERE cl.relnamespace = 'lifecycle'::regnamespace AND cl.relkind = 'r'
   AND a.attnum > 0 AND NOT a.attisdropped
   AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'name'::regtype,
					  'json'::regtype, 'jsonb'::regtype, 'text[]'::regtype);

SET ROLE cmp_e_app;
SELECT lifecycle_invite('zelda-4711-req', 'zelda.needleman@example.net', 'cmp_ep',
	'cmp_ep', 'eu', '{"name": "Zelda Needleman", "phone": "+41 79 555 12 34",
	"address": {"street": "Needlestrasse 5", "tags": ["vip", "Zelda Needleman"]}}') > 0 AS invited;
SELECT lifecycle_invite('yorick-0815-tmr', 'yorick@example.org', 'cmp_ep', 'cmp_ep',
	'us', '{"name": "Yorick Haystack", "note": "1970-01-01 born"}') > 0 AS invited;
SELECT lifecycle_register('zelda-4711-req', 'cmp_ep'), lifecycle_register('yorick-0815-tmr', 'cmp_ep');
SELECT lifecycle_complete('zelda-4711-req', 'cmp_ep'), lifecycle_complete('yorick-0815-tmr', 'cmp_ep');
RESET ROLE;
SELECT lifecycle_hold('yorick-0815-tmr', 'cmp_ep', 'ticket 12');
SELECT lifecycle_release('yorick-0815-tmr', 'cmp_ep');
-- Messages with the personal data are in the outbox, and the scan finds
-- every needle before the erasure (it does look).
SELECT o.message, o.status, o.payload ? 'email' AS has_email, o.payload ? 'attrs' AS has_attrs
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 'cmp_ep' ORDER BY u.subject, o.id;
SELECT tab, col, count(*) AS needles FROM pg_temp.cmp_scan('request') GROUP BY 1, 2 ORDER BY 1, 2;
SELECT tab, col, count(*) AS needles FROM pg_temp.cmp_scan('timer') GROUP BY 1, 2 ORDER BY 1, 2;

-- Erasure on request, by the application.
SET ROLE cmp_e_app;
SELECT lifecycle_erase('zelda-4711-req', 'cmp_ep', 'GDPR Art. 17 request, ticket 991') > 0 AS erased;
RESET ROLE;
SELECT * FROM pg_temp.cmp_scan('request');

-- Erasure by the timer: reminder, archive, then erase.
SELECT lifecycle_travel('1 day 1 hour') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT lifecycle_travel('1 day') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT * FROM pg_temp.cmp_scan('timer');
SELECT * FROM pg_temp.cmp_scan('request');

-- What is left: users rows without subject, e-mail or attrs; messages
-- scrubbed, the undelivered ones cancelled.
SELECT state, subject, email, attrs, hold_reason, last_error, region
  FROM lifecycle.users WHERE tenant = 'cmp_ep' ORDER BY id;
SELECT o.message, o.status, o.payload
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 'cmp_ep' ORDER BY o.id;
-- The evidence: when, why, by whom; no column that says who.
SELECT state_before, reason, requested_by, policy, tenant,
	   erased_at <= lifecycle_now() AS erased_at_past
  FROM lifecycle.erasures WHERE tenant = 'cmp_ep' ORDER BY id;
SELECT array_agg(attname ORDER BY attnum) AS evidence_columns
  FROM pg_attribute WHERE attrelid = 'lifecycle.erasures'::regclass AND attnum > 0
   AND NOT attisdropped;
-- The erase transitions are in the history, by the same actors.
SELECT h.event, h.from_state, h.to_state, h.actor, h.detail
  FROM lifecycle.history h JOIN lifecycle.erasures e ON e.user_id = h.user_id
 WHERE e.tenant = 'cmp_ep' AND h.event IN ('erase', 'erase_due') ORDER BY h.id;
-- The subject is unknown now; inviting it again starts a new workflow.
SELECT lifecycle_touch('zelda-4711-req', 'cmp_ep');
SELECT lifecycle_invite('zelda-4711-req', 'zelda.needleman@example.net', 'cmp_ep')
	   NOT IN (SELECT user_id FROM lifecycle.erasures) AS new_id;
SELECT lifecycle_erase('zelda-4711-req', 'cmp_ep') > 0 AS erased_again;
SELECT * FROM pg_temp.cmp_scan('request');
DROP ROLE cmp_e_app;
