# Copyright (c) lifecycle authors
#
# pg_cron mode end to end with a real consumer (test/sinks/consumer.py,
# psycopg2): lifecycle is not preloaded, messages have no channel
# (unrouted), lifecycle_tick() advances the timers, and the application
# LISTENs on lifecycle_messages, claims, delivers and acknowledges.  The
# first consumer dies mid-lease; its messages come back after the lease
# (lifecycle clock) with attempts + 1 and the second consumer gets them.
# Every message is received at least once, none after its ack, and the
# consumer only ever wakes on a NOTIFY (its poll interval is longer than
# the test).
use strict;
use warnings FATAL => 'all';
use FindBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $consumer_py = "$FindBin::RealBin/../sinks/consumer.py";

my $node = PostgreSQL::Test::Cluster->new('consumer');
$node->init;
$node->append_conf('postgresql.conf', "lifecycle.allow_time_travel = on\n");
$node->start;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE app LOGIN IN ROLE lifecycle_app;
});
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'lifecycle%'}),
	'0', 'pg_cron mode: no lifecycle worker');

my $dir = PostgreSQL::Test::Utils::tempdir();
my $marker = "$dir/crashed";
my $dsn = $node->connstr('postgres') . ' user=app';

sub wait_until
{
	my ($code) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return 1 if $code->();
		usleep(100_000);
	}
	return $code->() ? 1 : 0;
}

sub events
{
	my ($log) = @_;
	return () unless -e $log;
	return map { decode_json($_) } grep { /\}\s*$/ } split /\n/, slurp_file($log);
}

sub start_consumer
{
	my ($name, @args) = @_;
	my $log = "$dir/$name.jsonl";
	my $h = IPC::Run::start(
		[ $python, $consumer_py, '--dsn', $dsn, '--log', $log,
			'--batch', '4', '--poll', '3600', @args ],
		'>', "$dir/$name.out", '2>', "$dir/$name.err");
	wait_until(sub { grep { $_->{event} eq 'ready' } events($log) })
	  or die "consumer $name did not start: " . slurp_file("$dir/$name.err");
	return ($h, $log);
}

# --- the first consumer dies mid-lease --------------------------------------
my ($ha, $loga) = start_consumer('a', '--crash-once', $marker);
$node->safe_psql('postgres',
	q{SELECT count(lifecycle_invite('c' || i, 'c' || i || '@example.com', 'shop'))
	  FROM generate_series(1, 6) i});
ok(wait_until(sub { -e $marker }), 'the first consumer claimed and crashed');
$ha->finish;
my @crashed = map { $_->{id} } grep { $_->{event} eq 'claim' } events($loga);
is(scalar(@crashed), 4, 'it had claimed one batch of 4');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox
		WHERE status = 'unrouted' AND claimed_at IS NOT NULL AND attempts = 1}),
	'4', 'its claims are leased, unacknowledged');

# --- the second consumer takes over ------------------------------------------
my ($hb, $logb) = start_consumer('b');
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'}) eq '2';
		}),
	'the second consumer delivered the two messages nobody had claimed');
$node->safe_psql('postgres',
	q{SELECT count(lifecycle_invite('d' || i, 'd' || i || '@example.com', 'shop'))
	  FROM generate_series(1, 5) i});
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'}) eq '7';
		}),
	'a NOTIFY at commit wakes it for new messages');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox
		WHERE status = 'unrouted' AND claimed_at IS NOT NULL}),
	'4', 'the crashed claims stay hidden while their lease lasts');

# Past the 5-minute lease and the first invite reminder (3 days): the tick
# writes 11 reminders and its commit notifies; the consumer gets them and
# the 4 whose lease ended.
$node->safe_psql('postgres',
	q{SELECT lifecycle_travel('3 days 1 minute'); SELECT lifecycle_tick()});
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FILTER (WHERE status = 'sent') || '/' || count(*)
				  FROM lifecycle.outbox}) eq '22/22';
		}),
	'every message delivered and acknowledged');
$hb->kill_kill(grace => 10);

my @ev_b = events($logb);
my %claims;
push @{ $claims{ $_->{id} } }, $_
  for grep { $_->{event} eq 'claim' } (events($loga), @ev_b);
my @ids = split /\n/,
  $node->safe_psql('postgres', q{SELECT id FROM lifecycle.outbox ORDER BY id});
is(scalar(grep { $claims{$_} } @ids), 22, 'every message was received at least once');
is( join(',', map { join(':', map { $_->{attempts} } @{ $claims{$_} }) } @crashed),
	join(',', ('1:2') x 4),
	'the crashed claims came back once, after the lease, with attempts + 1');

# None after its ack: the second consumer acknowledged each message once
# and never received it again.
my (%acked, @late);
for my $e (@ev_b)
{
	if ($e->{event} eq 'ack') { $acked{$_} = 1 for @{ $e->{ids} } }
	elsif ($e->{event} eq 'claim' && $acked{ $e->{id} }) { push @late, $e->{id} }
}
is(scalar(@late), 0, 'no message was handed out again after its ack');
is(scalar(keys %acked), 22, 'the second consumer acknowledged all 22');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox
		WHERE status = 'sent' AND sent_at IS NOT NULL AND claimed_at IS NULL}),
	'22', 'acknowledged messages are sent, with sent_at');
my @wakes = map { $_->{why} } grep { $_->{event} eq 'wake' } @ev_b;
ok(@wakes >= 2 && !grep({ $_ ne 'notify' } @wakes),
	'the consumer woke only on NOTIFY (' . join(',', @wakes) . ')');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(DISTINCT message, ',' ORDER BY message)
		FROM lifecycle.outbox}),
	'invite,invite_reminder', 'invites from calls and reminders from the tick');

$node->stop;
done_testing();
