# 100,000 users fall due; the postmaster is killed with SIGKILL while the
# worker is advancing them.  After restart every user has been advanced
# exactly once: no history duplicates, none lost, none left due, and the
# timers that were not due yet survive the crash unchanged.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $n = 100_000;
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# Small batches: many commits, so the kill lands between and inside them.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.batch_size = 100
shared_buffers = '256MB'
max_wal_size = '2GB'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lifecycle');

# $n active users (dormant after 90 days) and 10 who register later, so
# their timers are not due when the others are.
$node->safe_psql('postgres', qq{
	SELECT count(lifecycle_invite('c' || i, 'c' || i || '\@example.com', 'crash'))
	  FROM generate_series(1, $n) i;
	SELECT count(lifecycle_register('c' || i, 'crash')) FROM generate_series(1, $n) i;
	SELECT count(lifecycle_invite('late' || i, 'late' || i || '\@example.com', 'late'))
	  FROM generate_series(1, 10) i;
});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('60 days')});
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_register('late' || i, 'late')) FROM generate_series(1, 10) i});
my $late_timers_q = q{SELECT string_agg(subject || ':' || next_event || ':' || next_at, ',' ORDER BY subject)
	FROM lifecycle.users WHERE tenant = 'late'};
my $late_timers = $node->safe_psql('postgres', $late_timers_q);

# The crash users fall due (31 days past their 90), the late ones not.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('31 days')});
my $advanced_q = q{SELECT count(*) FROM lifecycle.history WHERE event = 'dormant'};
$node->poll_query_until('postgres', "SELECT ($advanced_q) > 0")
  or die 'the worker never started advancing';
# SIGKILL for the postmaster alone.  Its children notice and exit: the
# scheduler at its next batch at the latest (it never sleeps between
# back-to-back batches, so it checks for postmaster death itself).
my $pm = $node->{_pid};
my @children = grep { /^\d+$/ } split /\s+/, `ps -o pid= --ppid $pm`;
$node->kill9;
my $gone = 0;
for my $i (1 .. 600)
{
	$gone = !grep { kill 0, $_ } @children;
	last if $gone;
	select(undef, undef, undef, 0.1);
}
ok($gone, 'every child of the killed postmaster exited, the scheduler too');

# Restart with the worker idle, to look at what survived the crash.
$node->append_conf('postgresql.conf', "lifecycle.enabled = off\n");
$node->start;
my $survived = $node->safe_psql('postgres', $advanced_q);
note "transitions that survived the crash: $survived of $n";
ok($survived > 0 && $survived < $n, 'the crash interrupted the run');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT user_id FROM lifecycle.history WHERE event = 'dormant'
	  GROUP BY user_id HAVING count(*) > 1) d}),
	'0', 'no duplicate after the crash');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users u WHERE tenant = 'crash'
	   AND (state = 'dormant') <> EXISTS (SELECT 1 FROM lifecycle.history h
			WHERE h.user_id = u.id AND h.event = 'dormant')}),
	'0', 'state and history agree for every user (committed together)');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.tenant = 'crash' AND o.message = 'archive_notice'}),
	$survived, 'one message per surviving transition');
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.overdue WHERE tenant = 'crash'}),
	$n - $survived, 'the rest is still due');

# The worker resumes and finishes.
$node->adjust_conf('postgresql.conf', 'lifecycle.enabled', 'on');
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM lifecycle.overdue WHERE tenant = 'crash'})
  or die 'the worker did not finish after the restart';

is($node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT h.user_id)
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 'crash' AND h.event = 'dormant'}),
	"$n/$n", 'every user transitioned exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'crash'
	   AND (state <> 'dormant' OR next_event <> 'archive_reminder' OR next_at IS NULL)}),
	'0', 'every user is dormant with its next timer armed');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.tenant = 'crash' AND o.message = 'archive_notice'}),
	$n, 'one archive notice per user');
is($node->safe_psql('postgres', $late_timers_q), $late_timers,
	'timers not yet due survived the crash unchanged');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 'late' AND h.event = 'dormant'}),
	'0', 'and did not fire early');

$node->stop;
done_testing();
