# Copyright (c) lifecycle authors
#
# The receiver is down for a while, then up again: every message is
# retried with backoff and delivered once it is back; the distinct
# webhook-ids the receiver accepted are exactly the messages written, and
# a retried message keeps its webhook-id.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $n = 200;
my $node = lc_node('down');
my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret);
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('p', '{"channel": "hooks"}');
});

# A first message while the receiver is up.
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('first', 'first@example.com', policy => 'p')});
$node->poll_query_until('postgres',
	q{SELECT status = 'sent' FROM lifecycle.outbox})
  or die 'first message not sent';

# Down: connections are refused.
$sink->stop;
$node->safe_psql('postgres',
	qq{SELECT count(lifecycle_invite('u' || i, 'u' || i || '\@example.com', policy => 'p'))
	   FROM generate_series(1, $n) i});

# Every message fails, is kept pending with a backoff, and is retried.
$node->poll_query_until('postgres',
	q{SELECT count(*) FILTER (WHERE attempts >= 1 AND claimed_at IS NULL
	  AND status = 'pending') = } . $n . q{ FROM lifecycle.outbox WHERE status <> 'sent'})
  or die 'messages not attempted';
like( $node->safe_psql(
		'postgres', q{SELECT last_error FROM lifecycle.comms WHERE status = 'pending'}),
	qr/connect|refused/i,
	'comms shows the connection error');
is( $node->safe_psql(
		'postgres', q{SELECT bool_and(next_attempt_at - last_attempt_at
		BETWEEN interval '5 seconds' AND interval '10 seconds')
		FROM lifecycle.outbox WHERE status = 'pending'}),
	't',
	'first retry after 5 to 10 s (10 s base, jittered)');

# Let a second attempt fail too (time travel makes the retries due).
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 minute')});
$node->poll_query_until('postgres',
	q{SELECT count(*) = } . $n . q{ FROM lifecycle.outbox
	  WHERE status = 'pending' AND attempts = 2 AND claimed_at IS NULL})
  or die 'second attempts not made';
is( $node->safe_psql(
		'postgres', q{SELECT bool_and(next_attempt_at - last_attempt_at
		BETWEEN interval '10 seconds' AND interval '20 seconds')
		FROM lifecycle.outbox WHERE status = 'pending'}),
	't',
	'the backoff doubles (second retry after 10 to 20 s)');
is( $node->safe_psql(
		'postgres', q{SELECT count(DISTINCT next_attempt_at) > 1
		FROM lifecycle.outbox WHERE status = 'pending'}),
	't',
	'retries are jittered');

# Up again (same port); the retries fall due and everything is delivered.
$sink->restart;
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 hour')});
$node->poll_query_until('postgres',
	q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox})
  or die 'messages not delivered after the receiver came back';

my $written = $node->safe_psql('postgres',
	q{SELECT string_agg(id::text, ',' ORDER BY id) FROM lifecycle.outbox});
is(join(',', $sink->ok_ids), $written,
	'distinct webhook-ids accepted = messages written (none lost)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lifecycle.outbox'),
	$n + 1, "all $n + 1 messages written");
my %seen;
$seen{ $_->{id} }++ for $sink->records;
is(scalar(grep { $seen{$_} != 1 } keys %seen),
	0, 'each message reached the receiver once (the failures never did)');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox
		WHERE status = 'sent' AND attempts = 3 AND last_error IS NULL}),
	$n,
	'the delayed messages took 3 attempts and their error is cleared');

$sink->stop;
$node->stop;
done_testing();
