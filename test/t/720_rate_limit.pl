# Copyright (c) lifecycle authors
#
# A channel's "rate_per_second": N: the sender never starts more than N
# deliveries per second on it; the rest wait, pending, and nothing is lost.
# 100 messages at 20 per second against the loopback webhook sink.  The
# checks are rates, not timings of our speed: no second of the sender's
# clock (the signed webhook-timestamp of each request, taken when the
# request starts) has more than N starts; the receive timestamps of the
# sink span at least count/N - 1 seconds, and the rate measured from them
# is at most 10 % over N.  A channel without the option meanwhile is not
# held back by the paced one.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use List::Util qw(max min);
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $count = 100;
my $rate = 20;
my $node = lc_node('rate', 'lifecycle.max_concurrent_requests = 16');
my $secret = lc_secret();
my $paced = start_webhook_sink(secret => $secret);
my $free = start_webhook_sink(secret => $secret);
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('paced', 'webhook', '$paced->{url}', '$secret',
		'{"rate_per_second": $rate}');
	SELECT lifecycle_add_channel('free', 'webhook', '$free->{url}', '$secret');
	SELECT lifecycle_define_policy('paced', '{"channel": "paced"}');
	SELECT lifecycle_define_policy('free', '{"channel": "free"}');
	SELECT count(lifecycle_invite('p' || i, 'p' || i || '\@example.com', 't720', 'paced'))
	  FROM generate_series(1, $count) i;
	SELECT count(lifecycle_invite('f' || i, 'f' || i || '\@example.com', 't720', 'free'))
	  FROM generate_series(1, 50) i;
});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM lifecycle.outbox WHERE status <> 'sent'})
  or die 'not everything was delivered';

my @r = grep { $_->{status} == 200 && $_->{valid} } $paced->records;
my %ids = map { $_->{id} => 1 } @r;
is(scalar(keys %ids), $count, "all $count paced messages arrived (nothing lost)");
is(scalar(@r), $count, 'each exactly once');
is(scalar(my @f = $free->ok_ids), 50, 'the unpaced channel delivered its 50');

my %per_second;
$per_second{ $_->{timestamp} }++ for @r;
my $busiest = max(values %per_second);
ok($busiest <= $rate, "no second has more than $rate starts (busiest: $busiest)");

my @at = sort { $a <=> $b } map { $_->{at} } @r;
my $span = $at[-1] - $at[0];
ok($span >= $count / $rate - 1,
	sprintf('received over %.2f s, at least %d s', $span, $count / $rate - 1));
my $measured = ($count - 1) / $span;
ok($measured <= $rate * 1.1,
	sprintf('measured rate %.2f/s is within 10 %% of the limit %d/s', $measured, $rate));
note(sprintf('measured %.2f deliveries/s against a limit of %d/s', $measured, $rate));

# The free channel was not paced: its messages did not wait for the paced
# ones (its last arrival is before the paced channel's last).
my @fat = sort { $a <=> $b } map { $_->{at} } $free->records;
ok($fat[-1] < $at[-1], 'the channel without a limit was not held back');

$paced->stop;
$free->stop;
$node->stop;
done_testing();
