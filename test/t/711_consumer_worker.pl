# Copyright (c) lifecycle authors
#
# NOTIFY lifecycle_messages from the scheduler worker: with the library
# preloaded, a reminder the worker writes unrouted in its own transaction
# wakes a LISTENing consumer (test/sinks/consumer.py), which claims and
# acknowledges it; a transaction that rolls back notifies nothing.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use IPC::Run;
use JSON::PP;
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $node = lc_node('consumer_worker');
$node->safe_psql('postgres', q{CREATE ROLE app LOGIN IN ROLE lifecycle_app});
my $dir = PostgreSQL::Test::Utils::tempdir();
my $log = "$dir/c.jsonl";

sub events
{
	return () unless -e $log;
	return map { decode_json($_) } grep { /\}\s*$/ } split /\n/, slurp_file($log);
}

my $h = IPC::Run::start(
	[ $python, "$FindBin::RealBin/../sinks/consumer.py", '--dsn',
		$node->connstr('postgres') . ' user=app', '--log', $log, '--poll', '3600' ],
	'>', "$dir/out", '2>', "$dir/err");
ok(wait_until(sub { grep { $_->{event} eq 'ready' } events() }), 'consumer listening')
  or diag(slurp_file("$dir/err"));

# Rolled back: no message, no wake-up.
$node->safe_psql('postgres',
	q{BEGIN; SELECT lifecycle_invite('r1', 'r1@example.com', 't711'); ROLLBACK;});
$node->safe_psql('postgres', q{SELECT lifecycle_invite('w1', 'w1@example.com', 't711')});
ok(wait_until(sub { grep { $_->{event} eq 'ack' } events() }), 'the invite was claimed and acknowledged');
my @wakes = grep { $_->{event} eq 'wake' } events();
is(scalar(@wakes), 1, 'one wake-up: the committed invite, not the rolled-back one');

# The worker fires the first reminder (3 days) in its own transaction.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('3 days 1 minute')});
ok( wait_until(
		sub {
			grep { $_->{event} eq 'claim' && $_->{message} eq 'invite_reminder' } events();
		}),
	'the reminder the scheduler wrote woke the consumer');
ok( wait_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FILTER (WHERE status = 'sent') || '/' || count(*)
				  FROM lifecycle.outbox}) eq '2/2';
		}),
	'both messages acknowledged');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(DISTINCT actor, ',') FROM lifecycle.history
		WHERE event = 'invite_reminder'}),
	'lifecycle worker', 'the reminder came from the worker');
is(scalar(grep { $_->{event} eq 'wake' && $_->{why} ne 'notify' } events()),
	0, 'every wake-up was a NOTIFY');

$h->kill_kill(grace => 10);
$node->stop;
done_testing();
