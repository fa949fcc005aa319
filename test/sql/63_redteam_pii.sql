-- Red team: no personal data in error messages (and so in the server log).
-- Every refusal names the argument, never the subject, e-mail address,
-- attrs or a hook's error text; a hook's error text is kept on the user
-- row only (lifecycle.overdue), and goes with the erasure.
CREATE FUNCTION pg_temp.attempt(sql text, secrets text[])
RETURNS TABLE (sqlstate text, leaks boolean, message text)
LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text; ctx text;
BEGIN
	BEGIN
		EXECUTE sql;
		RETURN QUERY SELECT '00000'::text, false, NULL::text;
		RETURN;
	EXCEPTION WHEN others THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
			det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	END;
	RETURN QUERY SELECT st,
		EXISTS (SELECT 1 FROM unnest(secrets) s
				 WHERE concat_ws(' ', msg, det, hnt) ILIKE '%' || s || '%'),
		msg;
END $$;
CREATE FUNCTION public.rt_p_hook(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cannot archive % <%>', subject, subject || '@pii.example';
END $$;
SELECT lifecycle_define_policy('cmp_p', '{"archive_after": "1 day", "archive_reminders": [],
  "hooks": {"archive": "public.rt_p_hook"}}') > 0 AS defined;
SELECT lifecycle_invite(s, s || '@pii.example', 'cmp_p', 'cmp_p', NULL, '{"name": "Zoe Piiname"}') > 0
  FROM unnest(ARRAY['pii-alice', 'pii-bob', 'pii-carol', 'pii-dave']) s;
SELECT lifecycle_register('pii-bob', 'cmp_p'), lifecycle_register('pii-carol', 'cmp_p');
SELECT lifecycle_hold('pii-dave', 'cmp_p', 'case');
SELECT lifecycle_erase('pii-erin', 'cmp_p');
SELECT lifecycle_invite('pii-erin', 'pii-erin@pii.example', 'cmp_p') > 0,
	   lifecycle_erase('pii-erin', 'cmp_p') > 0;

SELECT a.what, r.*
  FROM (VALUES
	('malformed e-mail', $$SELECT lifecycle_invite('pii-new', 'pii-new-at-pii.example', 'cmp_p')$$),
	('e-mail with a space', $$SELECT lifecycle_invite('pii-new', 'pii new@pii.example', 'cmp_p')$$),
	('unknown subject', $$SELECT lifecycle_touch('pii-ghost', 'cmp_p')$$),
	('erased subject', $$SELECT lifecycle_register('pii-erin', 'cmp_p')$$),
	('erased subject, hold', $$SELECT lifecycle_hold('pii-erin', 'cmp_p', 'x')$$),
	('erased subject, status', $$SELECT * FROM lifecycle_status('pii-erin', 'cmp_p')$$),
	('erased subject, history', $$SELECT * FROM lifecycle_history('pii-erin', 'cmp_p')$$),
	('touch of an invited user', $$SELECT lifecycle_touch('pii-alice', 'cmp_p')$$),
	('complete of an invited user', $$SELECT lifecycle_complete('pii-alice', 'cmp_p')$$),
	('restore of an invited user', $$SELECT lifecycle_restore('pii-alice', 'cmp_p')$$),
	('release without hold', $$SELECT lifecycle_release('pii-bob', 'cmp_p')$$),
	('erase under hold', $$SELECT lifecycle_erase('pii-dave', 'cmp_p')$$),
	('invite again, held', $$SELECT lifecycle_invite('pii-dave', 'pii-dave@pii.example', 'cmp_p', 'nopolicy')$$),
	('archive hook fails', $$SELECT lifecycle_archive('pii-carol', 'cmp_p')$$),
	('subject too long', $$SELECT lifecycle_invite(repeat('pii-long', 40), 'a@pii.example', 'cmp_p')$$)
  ) a(what, sql), LATERAL pg_temp.attempt(a.sql,
	ARRAY['pii-', '@pii.example', 'Piiname']) r;

-- A failing hook at the timer: the error is kept on the user row
-- (lifecycle.overdue shows it), and erasing the user erases it.
SELECT lifecycle_complete('pii-carol', 'cmp_p');
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT subject, last_error FROM lifecycle.overdue WHERE tenant = 'cmp_p';
SELECT lifecycle_erase('pii-carol', 'cmp_p') > 0 AS erased;
SELECT count(*) AS kept FROM lifecycle.users
 WHERE tenant = 'cmp_p' AND (last_error LIKE '%pii-carol%' OR subject = 'pii-carol');
SELECT count(*) AS in_history FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 'cmp_p' AND h.detail::text LIKE '%pii-%';

-- Clean up.
SELECT lifecycle_release('pii-dave', 'cmp_p');
SELECT count(lifecycle_erase(subject, 'cmp_p')) AS erased FROM lifecycle.users
 WHERE tenant = 'cmp_p' AND state <> 'erased';
SELECT lifecycle_define_policy('cmp_p', '{"hooks": {}}') > 0 AS defined;
DROP FUNCTION public.rt_p_hook(text, text);
