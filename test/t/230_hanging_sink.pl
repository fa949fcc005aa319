# Copyright (c) lifecycle authors
#
# A receiver that accepts connections and never answers keeps the sender
# busy (up to lifecycle.http_timeout), but never delays transitions: the
# scheduler worker keeps advancing users and writing their messages.  When
# the request times out the message is retried, and delivered later.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# A long timeout: the sender stays stuck for the whole test unless told.
my $node = lc_node('hang', "lifecycle.http_timeout = '10min'");
my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret, mode => 'hang');
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('p', '{"channel": "hooks",
		"invite_reminders": ["1 day"], "invite_expires_after": "2 days"}');
	SELECT count(lifecycle_invite('h' || i, 'h' || i || '\@example.com', policy => 'p'))
	  FROM generate_series(1, 20) i;
});

# The sender is stuck on the hanging receiver.
ok(wait_until(sub { scalar(my @r = $sink->records) >= 1 }), 'the receiver got requests');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) > 0 FROM lifecycle.outbox WHERE claimed_at IS NOT NULL}),
	't', 'messages are in flight (the sender waits)');
like( $node->safe_psql(
		'postgres', q{SELECT coalesce(xact_start::text, 'no transaction') || ': ' || query
		FROM pg_stat_activity WHERE backend_type = 'lifecycle sender'}),
	qr/^no transaction: lifecycle: delivering messages/,
	'the sender holds no transaction while it waits');

# The scheduler (the worker, not lifecycle_tick) keeps advancing users.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('25 hours')});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 20 FROM lifecycle.history WHERE event = 'invite_reminder'})
  or die 'the scheduler did not fire the reminders';
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 20 FROM lifecycle.users WHERE state = 'expired'})
  or die 'the scheduler did not expire the invitations';
pass('transitions went on while the receiver hung');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox WHERE message = 'invite_reminder'}),
	'20', 'their messages were written');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'}),
	'0', 'nothing was delivered meanwhile');

# Cancelling the stuck sender is an error it survives: the claims are taken
# back and the messages sent again (same ids), here to the same hang.
my $stuck = scalar(my @before = $sink->records);
$node->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	  WHERE backend_type = 'lifecycle sender'});
$node->poll_query_until('postgres',
	q{SELECT errors_total = 1 AND last_error LIKE 'canceling statement%'
	  FROM lifecycle.worker_stats WHERE worker = 'sender'})
  or die 'the cancel was not counted';
ok( wait_until(
		sub { $node->log_contains('messages left in flight will be delivered again') }),
	'after the error the claims are taken back');
ok(wait_until(sub { scalar(my @r = $sink->records) > $stuck }),
	'and delivered again');
my %count;
$count{ $_->{id} }++ for $sink->records;
ok((grep { $_ > 1 } values %count), 'a redelivery keeps its webhook-id');

# The receiver answers again; the stuck requests end (no answer: retried)
# and everything is delivered.
$node->safe_psql('postgres', q{ALTER SYSTEM SET lifecycle.http_timeout = '5s';
	SELECT pg_reload_conf()});
$sink->control(mode => 'ok');
ok( wait_until(
		sub {
			$node->safe_psql('postgres', q{SELECT lifecycle_travel('10 minutes')});
			$node->safe_psql('postgres',
				q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox}) eq 't';
		}),
	'all messages delivered once the receiver answers');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM lifecycle.outbox}),
	join(',', $sink->ok_ids),
	'every message written was accepted');

$sink->stop;
$node->stop;
done_testing();
