# Copyright (c) lifecycle authors
#
# A receiver that answers 500 until the messages are dead (after
# lifecycle.max_attempts, every attempt with the same webhook-id);
# lifecycle_retry_dead() then delivers them.  A receiver that answers 410
# disables its channel: the messages stay pending and are not sent until
# the channel is added again, then the backlog is delivered.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = lc_node('dead', 'lifecycle.max_attempts = 3');
my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret, mode => 'fail');
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('p', '{"channel": "hooks"}');
	CREATE ROLE aud LOGIN IN ROLE lifecycle_auditor;
	SELECT count(lifecycle_invite('d' || i, 'd' || i || '\@example.com', policy => 'p'))
	  FROM generate_series(1, 5) i;
});

# --- 500 until dead --------------------------------------------------------
# Each failed attempt is retried after its backoff; time travel makes the
# retries due without waiting.
ok( wait_until(
		sub {
			$node->safe_psql('postgres', q{SELECT lifecycle_travel('5 minutes')});
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'dead'}) eq '5';
		}),
	'500s until the messages are dead');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(DISTINCT attempts || ' ' || last_error, ',')
		FROM lifecycle.dead_letters}),
	'3 HTTP 500',
	'dead after lifecycle.max_attempts, last error shown');
is( $node->safe_psql(
		'postgres', q{SET ROLE aud; SELECT count(*) FROM lifecycle.dead_letters
		WHERE channel = 'hooks' AND message = 'invite'}),
	'5',
	'auditors see the dead letters');
is( $node->safe_psql(
		'postgres', q{SELECT status || ' ' || messages || ' ' || last_error
		FROM lifecycle.comms}),
	'dead 5 HTTP 500',
	'comms: 5 dead with the error');
my %tries;
$tries{ $_->{id} }++ for $sink->records;
is(join(',', map { $tries{$_} } sort keys %tries),
	'3,3,3,3,3', 'each message was tried 3 times, always with the same webhook-id');

# Dead letters stay dead: more time changes nothing.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'dead'}),
	'5', 'dead letters are not retried by themselves');

my ($rc, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT lifecycle_retry_dead('nope')});
like($err, qr/42704/, 'retry_dead of an unknown channel: 42704');
($rc, $out, $err) = $node->psql('postgres',
	q{SET ROLE aud; SELECT lifecycle_retry_dead()});
like($err, qr/permission denied/, 'auditors may not retry dead letters');

$sink->control(mode => 'ok');
is($node->safe_psql('postgres', q{SELECT lifecycle_retry_dead('hooks')}),
	'5', 'retry_dead requeues the 5 dead letters');
$node->poll_query_until('postgres',
	q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox})
  or die 'requeued messages not delivered';
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM lifecycle.outbox}),
	join(',', $sink->ok_ids),
	'retry_dead delivered them all');
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.dead_letters}),
	'0', 'no dead letters left');

# --- 429 with Retry-After: the receiver decides when to come back ---------
$sink->control(mode => 'throttle', retry_after => 7200);
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('t1', 't1@example.com', policy => 'p')});
$node->poll_query_until('postgres',
	q{SELECT attempts = 1 AND claimed_at IS NULL AND status = 'pending'
	  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	  WHERE u.subject = 't1'})
  or die 'throttled message not attempted';
is( $node->safe_psql(
		'postgres', q{SELECT o.last_error || ', retry after ' || (o.next_attempt_at - o.last_attempt_at)
		FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
		WHERE u.subject = 't1'}),
	'HTTP 429, retry after 02:00:00',
	'429: the retry waits for Retry-After (longer than the backoff)');
$sink->control(mode => 'ok');
$node->safe_psql('postgres', q{SELECT lifecycle_travel('2 hours')});
$node->poll_query_until('postgres',
	q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox})
  or die 'throttled message not delivered';
pass('delivered after Retry-After');

# --- 410 disables the channel ---------------------------------------------
my $gone = start_webhook_sink(secret => $secret, mode => 'gone');
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('gone', 'webhook', '$gone->{url}', '$secret');
	SELECT lifecycle_define_policy('pg', '{"channel": "gone"}');
	SELECT count(lifecycle_invite('g' || i, 'g' || i || '\@example.com', policy => 'pg'))
	  FROM generate_series(1, 3) i;
});
$node->poll_query_until('postgres',
	q{SELECT NOT enabled FROM lifecycle.channels WHERE name = 'gone'})
  or die 'channel not disabled';
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM lifecycle.outbox WHERE channel = 'gone'
	  AND claimed_at IS NOT NULL})
  or die 'results not recorded';
like( $node->safe_psql(
		'postgres', q{SELECT disabled_reason FROM lifecycle.comms WHERE channel = 'gone'}),
	qr/410/,
	'comms shows the channel disabled by a 410');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(DISTINCT status || ' ' || attempts, ',')
		FROM lifecycle.outbox WHERE channel = 'gone'}),
	'pending 0',
	'its messages stay pending; the 410 attempt is not counted');
my $requests = () = $gone->records;
ok($requests >= 1 && $requests <= 3, "the receiver got at most one request per message ($requests)");

# While disabled, nothing is sent, whatever the time.
$gone->control(mode => 'ok');
my $wakes = $node->safe_psql('postgres',
	q{SELECT last_wake FROM lifecycle.worker_stats WHERE worker = 'sender'});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
$node->poll_query_until('postgres',
	qq{SELECT last_wake > '$wakes' FROM lifecycle.worker_stats WHERE worker = 'sender'})
  or die 'sender did not wake';
is(scalar(my @r = $gone->records), $requests, 'a disabled channel gets no requests');

# Added again: enabled, and the backlog is delivered.
$node->safe_psql('postgres',
	qq{SELECT lifecycle_add_channel('gone', 'webhook', '$gone->{url}', '$secret')});
$node->poll_query_until('postgres',
	q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox WHERE channel = 'gone'})
  or die 'backlog not delivered';
my @delivered = $gone->ok_ids;
is(scalar(@delivered), 3, 'the backlog is delivered once the channel is added again');
is( $node->safe_psql(
		'postgres', q{SELECT enabled::text || coalesce(disabled_reason, '')
		FROM lifecycle.channels WHERE name = 'gone'}),
	'true', 'the channel is enabled again');

$gone->stop;
$sink->stop;
$node->stop;
done_testing();
