# pg_cron mode: lifecycle is not preloaded (no worker); pg_cron runs
# lifecycle_tick() every minute and that advances the due users.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
lifecycle.allow_time_travel = on
});
$node->start;
$node->safe_psql('postgres', q{
	SET client_min_messages = error;
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION lifecycle;
	SELECT count(lifecycle_invite('p' || i, 'p' || i || '@example.com', 'cron'))
	  FROM generate_series(1, 50) i;
	SELECT count(lifecycle_register('p' || i, 'cron')) FROM generate_series(1, 50) i;
});
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'}),
	'0', 'no lifecycle scheduler without preloading');

$node->safe_psql('postgres', q{SELECT lifecycle_travel('91 days')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.overdue}),
	'50', 'the users are due');

$node->safe_psql('postgres',
	q{SELECT cron.schedule('lifecycle', '* * * * *', 'SELECT lifecycle_tick()')});
# pg_cron runs at the next minute boundary.
$node->poll_query_until('postgres',
	q{SELECT count(*) = 50 FROM lifecycle.users WHERE tenant = 'cron' AND state = 'dormant'})
  or die 'pg_cron did not advance the users';
is($node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT user_id) || '/' || bool_and(actor = 'lifecycle worker')
	  FROM lifecycle.history WHERE event = 'dormant'}),
	'50/50/true', 'each user advanced once by lifecycle_tick()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.overdue}),
	'0', 'nothing left due');
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM cron.job_run_details WHERE status = 'succeeded'})
  or die 'no pg_cron run recorded';
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details WHERE status = 'failed'}),
	'0', 'no failed pg_cron run');

$node->stop;
done_testing();
