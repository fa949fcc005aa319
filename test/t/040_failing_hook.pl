# A hook that raises holds back its own user only: that user stays due with
# retry_at, retries and last_error (lifecycle.overdue), the error is counted
# in lifecycle.worker_stats (which names the hook and the user id, never the
# hook's own text: shared memory holds no personal data), the other users advance, the worker keeps
# running (same pid, no crash loop), and once the hook is fixed the user
# advances on its next retry.  The worker runs hooks with search_path
# pg_catalog, pg_temp: the hook qualifies its table names.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hook');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.batch_size = 7
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE TABLE archived_accounts (subject text, tenant text);
	CREATE FUNCTION archive_account(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		IF subject LIKE 'bad%' THEN
			RAISE EXCEPTION 'cannot archive %', subject;
		END IF;
		INSERT INTO public.archived_accounts VALUES (subject, tenant);
	END $$;
	SELECT lifecycle_define_policy('hooked', '{"archive_after": "10 days",
		"archive_reminders": [], "hooks": {"archive": "archive_account"}}');
	SELECT count(lifecycle_invite(s, s || '@example.com', 'h', 'hooked'))
	  FROM unnest(ARRAY['bad1', 'good1', 'good2', 'good3', 'good4', 'good5',
						'good6', 'good7', 'good8', 'good9', 'good10', 'good11',
						'good12', 'good13', 'good14', 'good15', 'good16', 'good17',
						'good18', 'good19']) s;
	SELECT count(lifecycle_register(subject, 'h')) FROM lifecycle.users WHERE tenant = 'h';
	SELECT count(lifecycle_complete(subject, 'h')) FROM lifecycle.users WHERE tenant = 'h';
});
my $worker_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'};
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_q) w")
  or die 'no scheduler';
my $pid = $node->safe_psql('postgres', $worker_q);

$node->safe_psql('postgres', q{SELECT lifecycle_travel('11 days')});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 19 FROM lifecycle.users WHERE tenant = 'h' AND state = 'archived'})
  or die 'the good users were not archived';
$node->poll_query_until('postgres',
	q{SELECT retries = 1 FROM lifecycle.users WHERE subject = 'bad1'})
  or die 'the failure was not recorded';

is($node->safe_psql('postgres', q{SELECT count(*) FROM archived_accounts}),
	'19', 'the hook ran once for every good user');
is($node->safe_psql('postgres', q{
	SELECT state || '|' || next_event || '|' || retries || '|' ||
		   (retry_at > lifecycle_now()) || '|' || (last_error LIKE '%cannot archive bad1%')
	  FROM lifecycle.overdue WHERE subject = 'bad1'}),
	'completed|archive_due|1|true|true', 'the failing user stays due, with its error, in overdue');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.subject = 'bad1' AND h.event = 'archive_due'}),
	'0', 'no archive transition for the failing user');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.subject = 'bad1' AND o.message = 'archived'}),
	'0', 'no message for the failing user (rolled back with the hook)');
is($node->safe_psql('postgres', q{
	SELECT errors_total >= 1 AND last_error ~ '^archive hook of policy "[^"]+" failed for user [0-9]+, see lifecycle.overdue$'
	  FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	't', 'worker_stats counts the error and names the hook, policy and user id only');

# The worker did not die, and does not retry before retry_at: after a
# further commit wakes it, still one attempt.
my $wake = $node->safe_psql('postgres',
	q{SELECT last_wake FROM lifecycle.worker_stats WHERE worker = 'scheduler'});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('10 seconds')});
$node->poll_query_until('postgres',
	qq{SELECT last_wake > '$wake' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
  or die 'the worker did not wake';
is($node->safe_psql('postgres', q{SELECT retries FROM lifecycle.users WHERE subject = 'bad1'}),
	'1', 'no retry before the backoff has passed');
is($node->safe_psql('postgres', $worker_q), $pid, 'the worker is still the same process');

# The backoff passes (1 minute): retried, fails again, backoff doubles.
my $retry_at = $node->safe_psql('postgres',
	q{SELECT retry_at FROM lifecycle.users WHERE subject = 'bad1'});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('61 seconds')});
$node->poll_query_until('postgres',
	q{SELECT retries = 2 FROM lifecycle.users WHERE subject = 'bad1'})
  or die 'no retry after the backoff';
is($node->safe_psql('postgres', qq{
	SELECT retry_at - '$retry_at'::timestamptz >= interval '2 minutes'
	  FROM lifecycle.users WHERE subject = 'bad1'}),
	't', 'the backoff doubled');

# Fixed hook: the next retry archives the user.
$node->safe_psql('postgres', q{
	CREATE OR REPLACE FUNCTION archive_account(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.archived_accounts VALUES (subject, tenant);
	END $$;
	SELECT lifecycle_travel('121 seconds');
});
$node->poll_query_until('postgres',
	q{SELECT state = 'archived' FROM lifecycle.users WHERE subject = 'bad1'})
  or die 'the fixed hook did not let the user advance';
is($node->safe_psql('postgres', q{
	SELECT retries || '|' || (retry_at IS NULL) || '|' || (last_error IS NULL)
	  FROM lifecycle.users WHERE subject = 'bad1'}),
	'0|true|true', 'success clears the failure');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.history WHERE event = 'archive_due'}),
	'20', 'one archive transition per user');
is($node->safe_psql('postgres', q{SELECT count(*) FROM archived_accounts}),
	'20', 'the hook\'s own writes: one per user');
is($node->safe_psql('postgres', $worker_q), $pid, 'the same worker process throughout');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|exited with exit code/, 'no worker crash in the log');

$node->stop;
done_testing();
