# The scheduler worker advances due users by itself, with no
# lifecycle_tick() call: it wakes on the commit that makes timers due,
# shows in pg_stat_activity and lifecycle.worker_stats, idles with
# lifecycle.enabled = off (SIGHUP), and comes back after SIGTERM.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
# max_sleep is an hour: every wake-up below must come from a commit
# (latch), a SIGHUP or a restart, never from polling.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = '1h'
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION lifecycle');

my $worker_q = q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'lifecycle scheduler' AND datname = 'postgres'};
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_q) w")
  or die 'scheduler never showed in pg_stat_activity';
my $pid = $node->safe_psql('postgres', $worker_q);
like($pid, qr/^\d+$/, 'scheduler runs in database postgres');
is($node->safe_psql('postgres',
		q{SELECT pid FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	$pid, 'worker_stats shows the pid of pg_stat_activity');

# 100 active users; nothing due yet.
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_invite('w' || i, 'w' || i || '@example.com', 'acme'))
	  FROM generate_series(1, 100) i;
	SELECT count(lifecycle_register('w' || i, 'acme')) FROM generate_series(1, 100) i;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.overdue}),
	'0', 'nothing due before travelling');

# Make the dormancy timers due: the commit wakes the worker.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('91 days')});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 100 FROM lifecycle.users WHERE tenant = 'acme' AND state = 'dormant'})
  or die 'the worker did not advance the users';

is($node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT user_id) || '/' ||
		   bool_and(actor = 'lifecycle worker')
	  FROM lifecycle.history WHERE event = 'dormant'}),
	'100/100/true', 'one dormant transition per user, by the worker');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.outbox WHERE message = 'archive_notice'}),
	'100', 'one archive notice per user');
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.overdue}),
	'0', 'nothing left due');
is($node->safe_psql('postgres', q{
	SELECT pid = } . $pid . q{ AND transitions_total >= 100 AND batches >= 1
		   AND last_wake IS NOT NULL AND last_wake > started AND errors_total = 0
	  FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	't', 'worker_stats counts the transitions and the wake-up');

# lifecycle.enabled = off idles the worker (SIGHUP); it stays connected.
my $wake = sub {
	$node->safe_psql('postgres',
		q{SELECT last_wake FROM lifecycle.worker_stats WHERE worker = 'scheduler'});
};
my $before = $wake->();
$node->safe_psql('postgres', q{ALTER SYSTEM SET lifecycle.enabled = off; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	qq{SELECT last_wake > '$before' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
  or die 'the worker did not wake on SIGHUP';
my $transitions = $node->safe_psql('postgres',
	q{SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'});

# The first archive reminder (7 days before archiving) falls due; the travel's commit wakes the idle
# worker, which must leave them alone.
$before = $wake->();
$node->safe_psql('postgres', q{SELECT lifecycle_travel('24 days')});
$node->poll_query_until('postgres',
	qq{SELECT last_wake > '$before' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
  or die 'the idle worker did not wake on the commit';
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM lifecycle.overdue WHERE tenant = 'acme'}),
	'100', 'disabled worker leaves due users due');
is($node->safe_psql('postgres',
		q{SELECT transitions_total FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	$transitions, 'disabled worker made no transition');
is($node->safe_psql('postgres', $worker_q), $pid,
	'disabled worker is still connected (same pid)');

# Enabled again: the SIGHUP wakes it and the overdue reminders fire.
$node->safe_psql('postgres', q{ALTER SYSTEM RESET lifecycle.enabled; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM lifecycle.overdue WHERE tenant = 'acme'})
  or die 'the re-enabled worker did not fire the overdue timers';
is($node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT user_id)
	  FROM lifecycle.history WHERE event = 'archive_reminder'}),
	'100/100', 'the overdue reminder fired once per user');

# A timer created by a commit wakes the worker at once (max_sleep is 1h).
$node->safe_psql('postgres', q{
	SELECT lifecycle_define_policy('quick', '{"dormant_after": "2 seconds",
		"touch_granularity": "1 second"}');
	SELECT lifecycle_invite('q1', 'q1@example.com', 'quick', 'quick');
	SELECT lifecycle_register('q1', 'quick');
});
$node->poll_query_until('postgres',
	q{SELECT state = 'dormant' FROM lifecycle.users WHERE tenant = 'quick'})
  or die 'a new timer did not wake the worker';
is($node->safe_psql('postgres', q{
	SELECT h.at >= h.due_at FROM lifecycle.history h
	  JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 'quick' AND h.event = 'dormant'}),
	't', 'the new timer fired at or after its due time');

# SIGTERM: the worker exits and the postmaster starts a new one.
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM ($worker_q) w WHERE pid <> $pid")
  or die 'the scheduler did not come back after SIGTERM';
is($node->safe_psql('postgres',
		q{SELECT pid <> } . $pid . q{ FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	't', 'worker_stats shows the new pid');

$node->stop;
done_testing();
