# Copyright (c) lifecycle authors
#
# A 410 disables a channel only if the target that answered is still the
# channel's target.  A request is in flight to the old receiver when an
# admin re-points the channel; the old receiver then answers 410 Gone: the
# channel stays enabled and the message is delivered to the new target.
# A 410 from the current target still disables the channel.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Long timeouts: the held request must still be open when it is released.
my $node = lc_node('gone_retarget', 'lifecycle.http_timeout = 300000');
my $secret = lc_secret();
my $old = start_webhook_sink(secret => $secret, mode => 'hold_gone');
my $new = start_webhook_sink(secret => $secret, mode => 'ok');
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$old->{url}', '$secret');
	SELECT lifecycle_define_policy('p700', '{"channel": "hooks"}');
	SELECT lifecycle_invite('a1', 'a1\@example.com', 't700', 'p700');
});
my $id = $node->safe_psql('postgres', q{SELECT id FROM lifecycle.outbox});

ok(wait_until(sub { scalar(my @r = $old->records) >= 1 }),
	'the old receiver has the request in flight');
$node->safe_psql('postgres',
	qq{SELECT lifecycle_add_channel('hooks', 'webhook', '$new->{url}', '$secret')});
# Release the held request: the old target answers 410.
$old->control(mode => 'ok');

$node->poll_query_until('postgres',
	q{SELECT claimed_at IS NULL AND (status = 'sent' OR last_error LIKE '%410%')
	  FROM lifecycle.outbox})
  or die 'the 410 was not recorded';
my @old = $old->records;
is(join(',', map { $_->{status} } @old), '410', 'the old target answered 410 once');
is( $node->safe_psql(
		'postgres', q{SELECT enabled || ' ' || coalesce(disabled_reason, '-')
		FROM lifecycle.channels WHERE name = 'hooks'}),
	'true -',
	'a 410 from the old target does not disable the re-pointed channel');
$node->poll_query_until('postgres',
	q{SELECT status = 'sent' FROM lifecycle.outbox})
  or die 'not delivered to the new target';
is(join(',', $new->ok_ids), $id, 'the message reached the new target');
is( $node->safe_psql('postgres', q{SELECT attempts FROM lifecycle.outbox}),
	'1', 'the 410 attempt is not counted');

# The current target's 410 still disables the channel.
$new->control(mode => 'gone');
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('a2', 'a2@example.com', 't700', 'p700')});
$node->poll_query_until('postgres',
	q{SELECT NOT enabled FROM lifecycle.channels WHERE name = 'hooks'})
  or die 'a 410 from the current target did not disable the channel';
like( $node->safe_psql(
		'postgres', q{SELECT disabled_reason FROM lifecycle.channels WHERE name = 'hooks'}),
	qr/410/, 'disabled by the current target\'s 410');

$old->stop;
$new->stop;
$node->stop;
done_testing();
