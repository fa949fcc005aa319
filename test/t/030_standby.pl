# Primary only: the scheduler does not run on a streaming standby; when the
# primary fails in the middle of advancing and the standby is promoted,
# the standby's worker takes over and finishes, with no transition lost or
# duplicated.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $n = 50_000;
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.batch_size = 100
shared_buffers = '256MB'
max_wal_size = '2GB'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION lifecycle');
$primary->safe_psql('postgres', qq{
	SELECT count(lifecycle_invite('s' || i, 's' || i || '\@example.com', 'sb'))
	  FROM generate_series(1, $n) i;
	SELECT count(lifecycle_register('s' || i, 'sb')) FROM generate_series(1, $n) i;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my $worker_q = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'};
$primary->poll_query_until('postgres', "SELECT ($worker_q) = 1")
  or die 'no scheduler on the primary';
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby in recovery');
is($standby->safe_psql('postgres', $worker_q), '0', 'no scheduler on the standby');
is($standby->safe_psql('postgres',
		q{SELECT pid IS NULL FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	't', 'worker_stats on the standby shows no scheduler');

# The timers fall due on the primary; wait until the standby has replayed
# some transitions, then the primary fails.
$primary->safe_psql('postgres', q{SELECT lifecycle_travel('91 days')});
my $advanced_q = q{SELECT count(*) FROM lifecycle.history WHERE event = 'dormant'};
$standby->poll_query_until('postgres', "SELECT ($advanced_q) > 0")
  or die 'the standby never saw a transition';
$primary->stop('immediate');
my $replayed = $standby->safe_psql('postgres', $advanced_q);
note "transitions on the standby at failover: $replayed of $n";
ok($replayed > 0 && $replayed < $n, 'the primary failed in the middle of the run');
is($standby->safe_psql('postgres', $worker_q), '0', 'still no scheduler before promotion');

$standby->promote;
$standby->poll_query_until('postgres', "SELECT ($worker_q) = 1")
  or die 'no scheduler after promotion';
$standby->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM lifecycle.overdue WHERE tenant = 'sb'})
  or die 'the promoted standby did not finish';

is($standby->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT user_id) FROM lifecycle.history WHERE event = 'dormant'}),
	"$n/$n", 'every user transitioned exactly once across the failover');
is($standby->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'sb'
	   AND (state <> 'dormant' OR next_event <> 'archive_reminder')}),
	'0', 'every user dormant with its next timer');
is($standby->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.outbox WHERE message = 'archive_notice'}),
	$n, 'one archive notice per user');
ok($standby->safe_psql('postgres',
		q{SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
	  >= $n - $replayed, 'the new primary\'s worker did the rest');

$standby->stop;
done_testing();
