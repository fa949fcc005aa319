# Red team against the real scheduler: a lifecycle_admin member who owns a
# schema plants operators there and defines a policy whose archive hook
# points the session's search_path at that schema (set_config(..., false),
# which outlives a function without a SET clause of its own).  Without the
# sandbox, the scheduler (the bootstrap superuser) re-plans its saved
# statements under that path and runs the planted operators as superuser,
# which make their owner one (issue 10, attack 1).  Also: a failing hook's
# error text (here carrying the subject) stays on the user row only, never
# in lifecycle.worker_stats or shared memory.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('redteam_worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = '1s'
lifecycle.batch_size = 4
log_statement = none
log_min_messages = debug1
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE mallory LOGIN IN ROLE lifecycle_admin;
	CREATE SCHEMA mal AUTHORIZATION mallory;
});
$node->safe_psql('postgres', q{
	SET SESSION AUTHORIZATION mallory;
	CREATE TABLE mal.pwned (what text, who name, su boolean, backend text);
	GRANT INSERT ON mal.pwned TO PUBLIC;
	CREATE FUNCTION mal.pwn(what text) RETURNS boolean
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO mal.pwned
		SELECT what, current_user, r.rolsuper, a.backend_type
		  FROM pg_catalog.pg_roles r, pg_catalog.pg_stat_activity a
		 WHERE r.rolname OPERATOR(pg_catalog.=) current_user
		   AND a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid();
		IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r
			 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
			ALTER ROLE mallory SUPERUSER;
		END IF;
		RETURN true;
	END $$;
	CREATE FUNCTION mal.texteq(text, text) RETURNS boolean LANGUAGE sql
	AS $$ SELECT mal.pwn('= text'); SELECT pg_catalog.texteq($1, $2) $$;
	CREATE OPERATOR mal.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mal.texteq);
	CREATE FUNCTION mal.int8eq(bigint, bigint) RETURNS boolean LANGUAGE sql
	AS $$ SELECT mal.pwn('= bigint'); SELECT pg_catalog.int8eq($1, $2) $$;
	CREATE OPERATOR mal.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = mal.int8eq);
	CREATE FUNCTION mal.tsle(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
	AS $$ SELECT mal.pwn('<= timestamptz'); SELECT pg_catalog.timestamptz_le($1, $2) $$;
	CREATE OPERATOR mal.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = mal.tsle);
	CREATE FUNCTION mal.tslt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
	AS $$ SELECT mal.pwn('< timestamptz'); SELECT pg_catalog.timestamptz_lt($1, $2) $$;
	CREATE OPERATOR mal.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = mal.tslt);
	CREATE TABLE mal.archived (subject text, path text);
	CREATE FUNCTION mal.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO mal.archived
		VALUES (subject, pg_catalog.current_setting('search_path'));
		PERFORM pg_catalog.set_config('search_path', 'mal, pg_catalog', false);
		PERFORM pg_catalog.set_config('work_mem', '65kB', false);
	END $$;
	CREATE FUNCTION mal.fails(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'hooktext-secret: cannot archive %', subject;
	END $$;
	SELECT lifecycle_define_policy('mal', '{"archive_after": "1 day",
		"archive_reminders": [], "hooks": {"archive": "mal.on_archive"}}');
	SELECT lifecycle_define_policy('malfail', '{"archive_after": "1 day",
		"archive_reminders": [], "hooks": {"archive": "mal.fails"}}');
	SELECT count(lifecycle_invite('wsubj' || i, 'wsubj' || i || '@example.com', 'mal',
		CASE WHEN i <= 2 THEN 'malfail' ELSE 'mal' END))
	  FROM generate_series(1, 12) i;
	SELECT count(lifecycle_register('wsubj' || i, 'mal')) FROM generate_series(1, 12) i;
	SELECT count(lifecycle_complete('wsubj' || i, 'mal')) FROM generate_series(1, 12) i;
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 3 FROM lifecycle.worker_stats WHERE pid IS NOT NULL})
  or die 'the workers did not start';

# Two simulated days, as in the report.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('2 days')});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 10 FROM lifecycle.users
	 WHERE tenant = 'mal' AND state = 'archived'})
  or die 'the scheduler did not archive the users';
$node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM lifecycle.overdue WHERE tenant = 'mal' AND retries > 0})
  or die 'the failing hooks were not recorded';
# Later batches too: more users, after the hooks have run.
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_invite('wlate' || i, 'wlate' || i || '@example.com', 'mal'))
	  FROM generate_series(1, 6) i;
	SELECT lifecycle_travel('4 days');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM lifecycle.users
	 WHERE tenant = 'mal' AND subject LIKE 'wlate%' AND next_at <= lifecycle_now()})
  or die 'the scheduler stopped advancing users';

my $pin = 'SET search_path = pg_catalog;';
is($node->safe_psql('postgres', "$pin SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'the hook owner did not become superuser');
is($node->safe_psql('postgres', $pin . q{
	SELECT coalesce(string_agg(DISTINCT backend || ': ' || what || ' as ' || who, ', '), '')
	  FROM mal.pwned}),
	'', 'no planted operator ran in the scheduler');
is($node->safe_psql('postgres', $pin . q{
	SELECT count(*) FROM mal.archived WHERE path LIKE '%mal%'}),
	'0', 'no hook started with the search_path an earlier hook set');
is($node->safe_psql('postgres', $pin . q{
	SELECT count(*) FROM mal.archived}), '10', 'each archive hook ran once');

# The failing hook's text: on the user row, not in shared memory.
like($node->safe_psql('postgres', $pin . q{
	SELECT string_agg(last_error, ' | ') FROM lifecycle.overdue WHERE tenant = 'mal'}),
	qr/hooktext-secret/, 'the hook error is kept on the user row');
my $stats = $node->safe_psql('postgres', $pin . q{
	SELECT coalesce(string_agg(coalesce(last_error, ''), ' | '), '') FROM lifecycle.worker_stats});
unlike($stats, qr/hooktext|wsubj|example\.com/, 'worker_stats holds no hook or user text');
like($stats, qr/archive hook of policy "malfail" failed for user \d+/,
	'worker_stats names the policy, the hook and the user id');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no crash');
unlike($log, qr/hooktext-secret|wsubj\d|wlate\d/, 'no hook text or subject in the server log');
done_testing();
