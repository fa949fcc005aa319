# What the scheduler writes to the server log: its start, one summary line
# for a busy minute (however many passes and users it covers, failures
# included), nothing per user, and its stop.  The summary comes a minute
# after the first pass it counts even though the worker then has nothing
# to do for an hour (lifecycle.max_sleep = 1h): this test waits for it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('logs');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = '1h'
lifecycle.batch_size = 50
log_min_messages = log
log_statement = none
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE FUNCTION archive_account(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		IF subject LIKE 'logfail%' THEN
			RAISE EXCEPTION 'hook refuses %', subject;
		END IF;
	END $$;
	SELECT lifecycle_define_policy('logged', '{"archive_after": "10 days",
		"archive_reminders": [], "hooks": {"archive": "archive_account"}}');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM lifecycle.worker_stats
	 WHERE worker = 'scheduler' AND pid IS NOT NULL})
  or die 'no scheduler';
ok($node->log_contains(qr/lifecycle scheduler started in database "postgres"/),
	'start is logged');

my $offset = -s $node->logfile;

# 400 users through completion and archiving, 5 of whose archive hooks
# fail: many batches of 50, several passes.
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_invite(s, s || '@example.com', 'logs', 'logged'))
	  FROM (SELECT 'logsubject' || i AS s FROM generate_series(1, 395) i
			UNION ALL SELECT 'logfail' || i FROM generate_series(1, 5) i) x;
	SELECT count(lifecycle_register(subject, 'logs')) FROM lifecycle.users WHERE tenant = 'logs';
	SELECT count(lifecycle_complete(subject, 'logs')) FROM lifecycle.users WHERE tenant = 'logs';
});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('11 days')});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 395 FROM lifecycle.users WHERE tenant = 'logs' AND state = 'archived'})
  or die 'the worker did not archive the users';
$node->poll_query_until('postgres', q{
	SELECT count(*) = 5 FROM lifecycle.overdue WHERE tenant = 'logs' AND retries > 0})
  or die 'the failing users were not recorded';
my $archived = $node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.history
	 WHERE actor = 'lifecycle worker' AND event = 'archive_due'});
is($archived, '395', '395 archived by the worker');

# One summary line, within about a minute, with the totals.
my $found = $node->wait_for_log(
	qr/lifecycle scheduler advanced \d+ users in \d+ batches since .*; \d+ transitions failed/,
	$offset);
my $log = slurp_file($node->logfile, $offset);
my @summaries = $log =~ /(lifecycle scheduler advanced .*)/g;
is(scalar @summaries, 1, 'one summary line for the busy minute') or diag(join "\n", @summaries);
# The 5 failing users are retried after a minute (backoff): the retry may
# fall inside the summarised minute too.
my ($users, $failed) =
  $summaries[0] =~ /advanced (\d+) users in \d+ batches since .*; (\d+) transitions failed and will be retried/;
is($users, 395, 'the summary counts the transitions');
ok($failed && $failed % 5 == 0, "and the failures of the 5 users ($failed)");
like($log, qr/HINT:  lifecycle\.overdue shows the users/, 'with a hint where to look');

# Nothing per user at LOG: no subject, no hook error, no user id.
unlike($log, qr/logsubject|logfail/, 'no subject in the log');
unlike($log, qr/hook refuses/, 'hook errors are not logged per user');
my @lifecycle_lines = grep { /lifecycle/ } split /\n/, $log;
cmp_ok(scalar @lifecycle_lines, '<=', 4, 'a handful of lifecycle lines for 400 users')
  or diag(join "\n", @lifecycle_lines);

# Stop: PostgreSQL's own line for the worker.
$offset = -s $node->logfile;
$node->stop('fast');
ok($node->log_contains(qr/terminating background worker "lifecycle scheduler" due to administrator command/,
		$offset), 'stop is logged');

done_testing();
