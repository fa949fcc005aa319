# Copyright (c) lifecycle authors
#
# The postmaster is killed with SIGKILL while the sender has messages in
# flight.  After restart nothing is lost: the messages claimed but never
# recorded are delivered again, with the same webhook-id, so a receiver
# that drops duplicates by webhook-id sees each message exactly once.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $n = 300;
my $node = lc_node('crash', 'lifecycle.max_concurrent_requests = 16');
my $secret = lc_secret();
# The receiver takes the requests and does not answer (yet).
my $sink = start_webhook_sink(secret => $secret, mode => 'hang');
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('p', '{"channel": "hooks"}');
	SELECT count(lifecycle_invite('c' || i, 'c' || i || '\@example.com', policy => 'p'))
	  FROM generate_series(1, $n) i;
});

ok(wait_until(sub { scalar(my @r = $sink->records) >= 16 }),
	'16 requests in flight at the receiver');
my $in_flight = $node->safe_psql('postgres',
	q{SELECT count(*) FROM lifecycle.outbox WHERE claimed_at IS NOT NULL});
ok($in_flight >= 16, "$in_flight messages claimed");
my $sender = $node->safe_psql('postgres',
	q{SELECT pid FROM lifecycle.worker_stats WHERE worker = 'sender'});
my $postmaster = $node->{_pid};

$node->kill9;
# Children notice the postmaster's death and exit; wait for them.
ok(wait_until(sub { !kill(0, $postmaster) && !kill(0, $sender) }, 60),
	'postmaster and sender gone');
my @before = $sink->records;
my %hung = map { $_->{id} => 1 } @before;
is(scalar(grep { $_->{status} == 200 } @before), 0, 'nothing was accepted before the crash');

# The receiver recovers, so does the server.
$sink->control(mode => 'ok');
$node->start;
$node->poll_query_until('postgres',
	q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox})
  or die 'messages not delivered after the crash';
ok($node->log_contains('messages left in flight will be delivered again'),
	'the new sender took back the claims of the crashed one');

my $written = $node->safe_psql('postgres',
	q{SELECT string_agg(id::text, ',' ORDER BY id) FROM lifecycle.outbox});
is(join(',', $sink->ok_ids), $written, 'every message delivered: none lost');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lifecycle.outbox'),
	$n, "$n messages");
my @after = grep { $_->{status} == 200 } $sink->records;
my @again = grep { $hung{ $_->{id} } } @after;
is(scalar(@again), scalar(keys %hung),
	'every message in flight at the crash was delivered again');
ok(!grep({ !$_->{valid} } @again), 'redeliveries are signed with the same webhook-id');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox WHERE claimed_at IS NOT NULL}),
	'0', 'no claim left behind');

$sink->stop;
$node->stop;
done_testing();
