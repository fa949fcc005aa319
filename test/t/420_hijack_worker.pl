# The workers run none of the objects an unprivileged user plants in public
# to shadow what the extension calls, even when the database's default
# search_path puts public before pg_catalog: the scheduler advances users
# (reminders, archive with a hook, erase) and the sender attempts
# deliveries, and the log table the planted objects write to stays empty.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hijack');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.allow_private_targets = on
lifecycle.max_sleep = '1s'
});
$node->start;

# Planted before the install, by a role that may create in public.
$node->safe_psql('postgres', q{
	CREATE ROLE evil LOGIN;
	GRANT CREATE ON SCHEMA public TO PUBLIC;
	CREATE TABLE public.pwned (what text, who name DEFAULT current_user, backend text);
	GRANT INSERT ON public.pwned TO PUBLIC;
	SET ROLE evil;
	CREATE FUNCTION public.log_(w text) RETURNS boolean
	LANGUAGE sql AS $$
		INSERT INTO public.pwned (what, backend)
		SELECT w, a.backend_type FROM pg_catalog.pg_stat_activity a
		 WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
		RETURNING true $$;
	CREATE FUNCTION public.now() RETURNS timestamptz
	LANGUAGE sql AS $$ SELECT public.log_('now'); SELECT pg_catalog.now() $$;
	CREATE FUNCTION public.unnest(bigint[]) RETURNS SETOF bigint
	LANGUAGE sql AS $$ SELECT public.log_('unnest'); SELECT pg_catalog.unnest($1) $$;
	CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text
	LANGUAGE sql AS $$ SELECT public.log_('unnest'); SELECT pg_catalog.unnest($1) $$;
	CREATE FUNCTION public.jsonb_build_object(VARIADIC text[]) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT public.log_('jsonb_build_object'); SELECT '{}'::jsonb $$;
	CREATE FUNCTION public.lower(text) RETURNS text
	LANGUAGE sql AS $$ SELECT public.log_('lower'); SELECT pg_catalog.lower($1) $$;
	CREATE FUNCTION public.greatest_(timestamptz) RETURNS timestamptz
	LANGUAGE sql AS $$ SELECT $1 $$;
	CREATE FUNCTION public.eq_text(text, text) RETURNS boolean
	LANGUAGE sql AS $$ SELECT public.log_('= text'); SELECT pg_catalog.texteq($1, $2) $$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.eq_text);
	CREATE FUNCTION public.eq_int8(bigint, bigint) RETURNS boolean
	LANGUAGE sql AS $$ SELECT public.log_('= bigint'); SELECT pg_catalog.int8eq($1, $2) $$;
	CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.eq_int8);
	CREATE FUNCTION public.le_ts(timestamptz, timestamptz) RETURNS boolean
	LANGUAGE sql AS $$ SELECT public.log_('<= timestamptz'); SELECT pg_catalog.timestamptz_le($1, $2) $$;
	CREATE OPERATOR public.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.le_ts);
	CREATE FUNCTION public.lt_ts(timestamptz, timestamptz) RETURNS boolean
	LANGUAGE sql AS $$ SELECT public.log_('< timestamptz'); SELECT pg_catalog.timestamptz_lt($1, $2) $$;
	CREATE OPERATOR public.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.lt_ts);
	RESET ROLE;
	-- The worst default: public before pg_catalog for every session,
	-- the workers' included unless they pin their own.
	ALTER DATABASE postgres SET search_path = public, pg_catalog;
});

$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE TABLE public.archived (subject text);
	CREATE FUNCTION public.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE sql SET search_path = pg_catalog
	AS $$ INSERT INTO public.archived VALUES (subject) $$;
	SELECT lifecycle_add_channel('hook', 'webhook', 'http://127.0.0.1:1/nowhere',
		'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
	SELECT lifecycle_define_policy('fast', '{"invite_reminders": ["1 day"],
		"invite_expires_after": "2 days", "expired_erase_after": "1 day",
		"archive_after": "2 days", "archive_reminders": ["1 day"],
		"erase_after": "2 days", "channel": "hook",
		"hooks": {"archive": "public.on_archive"}}');
	SELECT count(lifecycle_invite('w' || i, 'w' || i || '@example.com', 't', 'fast'))
	  FROM generate_series(1, 20) i;
	SELECT count(lifecycle_register('w' || i, 't')) FROM generate_series(1, 10) i;
	SELECT count(lifecycle_complete('w' || i, 't')) FROM generate_series(1, 10) i;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.pwned'), '0',
	'the install and the application calls ran no planted object');

# This session's own queries pin their search_path or qualify their
# operators (the shadows would run in them, not in the workers).
my $pin = 'SET search_path = pg_catalog, public;';
my $check = "$pin SELECT count(*) FROM public.pwned";
# Drive the clock day by day; the scheduler does the rest by itself.
for my $day (1 .. 7)
{
	$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
	$node->poll_query_until('postgres',
		q{SELECT count(*) OPERATOR(pg_catalog.=) 0 FROM lifecycle.users
		   WHERE next_at OPERATOR(pg_catalog.<=) lifecycle_now()})
	  or die "the scheduler did not catch up on day $day";
}
is($node->safe_psql('postgres',
	$pin . q{SELECT count(*) FROM lifecycle.users WHERE state = 'erased'}), '20',
	'the scheduler archived, expired and erased everybody');
is($node->safe_psql('postgres', "$pin SELECT count(*) FROM public.archived"), '10',
	'the archive hook ran for each completed user');
is($node->safe_psql('postgres', $pin . q{
	SELECT count(DISTINCT actor) || ' ' || min(actor) FROM lifecycle.history
	 WHERE actor <> current_user}), '1 lifecycle worker', 'timers were fired by the worker');
$node->poll_query_until('postgres',
	q{SELECT count(*) OPERATOR(pg_catalog.>) 0 FROM lifecycle.outbox
	   WHERE attempts OPERATOR(pg_catalog.>) 0})
  or die 'the sender attempted no delivery';

is($node->safe_psql('postgres', $pin . q{
	SELECT coalesce(string_agg(DISTINCT backend || ': ' || what, ', '), '') FROM public.pwned}),
	'', 'no planted function or operator ran in the scheduler or the sender');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no crash');

# Positive control: the planted operator is live for a session's own SQL.
$node->safe_psql('postgres', q{SELECT 'a'::text = 'a'::text});
is($node->safe_psql('postgres', $check), '1', 'the shadows were live all along');

$node->stop;
done_testing();
