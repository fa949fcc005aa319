# Copyright (c) lifecycle authors
#
# Webhooks of a full lifecycle: every message the lifecycle writes arrives
# at the sink once, signed per Standard Webhooks (checked by the sink with
# the channel secret), with webhook-id = the body's id = the outbox id.
# Also: the signature matches Standard Webhooks' own example; channels are
# validated (22023/22004, nothing stored); secrets are readable by no role
# but the owner; a region the channel does not serve is blocked; an
# erasure cancels pending messages and scrubs their payloads.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = lc_node('hooks');
my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret);

# Standard Webhooks' published example (svix test suite).
is( $node->safe_psql(
		'postgres', q{SELECT lifecycle._webhook_signature(
		'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
		1614265330, '{"test": 2432232314}')}),
	'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
	'signature matches the Standard Webhooks example');

# --- channel validation: clear SQLSTATEs, nothing stored ------------------
my @bad = (
	[ q{'x', 'webhook', 'file:///etc/passwd', SECRET}, '22023', 'file:// target' ],
	[ q{'x', 'webhook', 'gopher://example.com/', SECRET}, '22023', 'gopher:// target' ],
	[ q{'x', 'webhook', 'ftp://example.com/', SECRET}, '22023', 'ftp:// target' ],
	[ q{'x', 'webhook', 'http://', SECRET}, '22023', 'target without host' ],
	[ q{'x', 'webhook', 'example.com/hook', SECRET}, '22023', 'target without scheme' ],
	[ q{'x', 'webhook', 'smtp://mail.example.com', SECRET}, '22023', 'smtp target for a webhook' ],
	[ q{'x', 'smtp', 'https://example.com/', NULL, '{"from": "a@example.com"}'}, '22023', 'http target for smtp' ],
	[ q{'x', 'carrier-pigeon', 'https://example.com/', SECRET}, '22023', 'unknown kind' ],
	[ q{'x', 'webhook', 'https://example.com/', 'not-a-secret'}, '22023', 'secret without whsec_' ],
	[ q{'x', 'webhook', 'https://example.com/', 'whsec_c2hvcnQ='}, '22023', 'secret too short' ],
	[ q{'x', 'webhook', 'https://example.com/', SECRET, '{"color": "red"}'}, '22023', 'unknown option' ],
	[ q{'x', 'webhook', 'https://example.com/', SECRET, '{"regions": "eu"}'}, '22023', 'regions not an array' ],
	[ q{'x', 'smtp', 'smtp://mail.example.com'}, '22023', 'smtp without from' ],
	[ q{'x', 'smtp', 'smtp://mail.example.com', NULL, '{"from": "a@example.com", "templates": {"nope": {}}}'}, '22023', 'template of an unknown message' ],
	[ q{'x', 'smtp', 'smtp://mail.example.com', 'pw', '{"from": "a@example.com"}'}, '22023', 'smtp password without username' ],
	[ q{'', 'webhook', 'https://example.com/', SECRET}, '22023', 'empty name' ],
	[ q{NULL, 'webhook', 'https://example.com/', SECRET}, '22004', 'NULL name' ],
	[ q{'x', NULL, 'https://example.com/', SECRET}, '22004', 'NULL kind' ],
	[ q{'x', 'webhook', NULL, SECRET}, '22004', 'NULL target' ],
	[ q{'x', 'webhook', 'https://example.com/', NULL}, '22004', 'webhook without secret' ],
	[ q{'x', 'webhook', 'https://example.com/', SECRET, NULL}, '22004', 'NULL options' ],);
for my $b (@bad)
{
	my ($args, $state, $what) = @$b;
	$args =~ s/SECRET/'$secret'/g;
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT lifecycle_add_channel($args)");
	like($err, qr/ERROR:\s+$state/, "add_channel refuses $what with $state");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM lifecycle.channels'),
	'0', 'no channel stored by refused calls');

# --- the channel and a policy with short timers -------------------------
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('fast', '{
		"channel": "hooks",
		"invite_reminders": ["1 day"], "invite_expires_after": "3 days",
		"dormant_after": "10 days", "archive_after": "5 days",
		"archive_reminders": ["2 days"], "erase_after": "30 days"}');
});

# Secrets: no role but the owner may read them.
$node->safe_psql(
	'postgres', q{
	CREATE ROLE aud LOGIN IN ROLE lifecycle_auditor;
	CREATE ROLE adm LOGIN IN ROLE lifecycle_admin;
	CREATE ROLE app LOGIN IN ROLE lifecycle_app;
});
for my $role (qw(aud adm app))
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET ROLE $role; SELECT secret FROM lifecycle.channels");
	like($err, qr/permission denied/, "$role cannot read channel secrets");
}
is( $node->safe_psql(
		'postgres', q{SET ROLE adm; SELECT name || ' ' || kind FROM lifecycle.channels}),
	'hooks webhook',
	'admin sees channels without their secrets');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM information_schema.columns
		WHERE table_schema = 'lifecycle' AND table_name IN ('comms', 'dead_letters')
		  AND column_name IN ('secret', 'email', 'attrs', 'payload', 'target')}),
	'0',
	'comms and dead_letters show no secret, target, e-mail, attrs or payload');
my ($rc, $out, $err) = $node->psql('postgres',
	q{SET ROLE app; SELECT lifecycle_add_channel('y', 'webhook', 'https://example.com/', 'whsec_x')});
like($err, qr/permission denied/, 'the application role cannot add channels');

# --- a full lifecycle ---------------------------------------------------
sub tick
{
	my ($travel) = @_;
	$node->safe_psql('postgres',
		"SELECT lifecycle_travel('$travel'); SELECT lifecycle_tick();");
}

$node->safe_psql(
	'postgres', q{
	SELECT lifecycle_invite('alice', 'alice@example.com', policy => 'fast',
		attrs => '{"name": "Alice"}');
	SELECT lifecycle_invite('bob', 'bob@example.com', policy => 'fast');
});
tick('25 hours');    # invite reminders
$node->safe_psql('postgres',
	q{SELECT lifecycle_register('alice'); SELECT lifecycle_register('bob');
	  SELECT lifecycle_complete('bob')});    # bob: archive notice
tick('11 days');     # alice dormant: archive notice
tick('4 days');      # archive reminders (2 days before archiving)
tick('2 days');      # archived
$node->safe_psql('postgres', q{SELECT lifecycle_restore('alice')});  # restored

my $expected = $node->safe_psql('postgres',
	q{SELECT string_agg(message, ',' ORDER BY message) FROM (
	  SELECT DISTINCT message FROM lifecycle.outbox) m});
is( $expected,
	'archive_notice,archive_reminder,archived,invite,invite_reminder,restored',
	'the lifecycle wrote every kind of message');

$node->poll_query_until('postgres',
	q{SELECT count(*) = count(*) FILTER (WHERE status = 'sent') FROM lifecycle.outbox})
  or die 'messages not delivered';
my $written = $node->safe_psql('postgres',
	q{SELECT string_agg(id || ':' || message, ',' ORDER BY id) FROM lifecycle.outbox});
my @recs = $sink->records;
my %got;
for my $r (@recs)
{
	$got{ $r->{id} } = "$r->{id}:$r->{type}";
}
is(join(',', map { $got{$_} } sort { $a <=> $b } keys %got),
	$written, 'every message arrived, with its type and id');
is(scalar(grep { !$_->{valid} } @recs), 0, 'every signature is valid');
is(scalar(grep { $_->{id} ne $_->{body_id} } @recs),
	0, 'webhook-id header = id in the body');
is(scalar(@recs), scalar(keys %got), 'each message arrived exactly once');
my ($notice) = grep { $_->{type} eq 'archive_notice' && $_->{data}{subject} eq 'alice' } @recs;
ok($notice && $notice->{data}{archive_at} && $notice->{data}{attrs}{name} eq 'Alice',
	'archive notice carries the archive date and attrs');
is( $node->safe_psql(
		'postgres', q{SELECT status || ' ' || messages FROM lifecycle.comms
		WHERE channel = 'hooks'}),
	'sent ' . scalar(keys %got),
	'comms: all sent');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM lifecycle._worker_stats()
		WHERE worker = 'sender' AND done >= } . scalar(keys %got)),
	'1', 'worker_stats counts the deliveries');

# --- a policy without channel: unrouted, never touched by the sender ------
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('nochannel', 'nochannel@example.com')});
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('after_unrouted', 'au@example.com', policy => 'fast')});
$node->poll_query_until('postgres',
	q{SELECT o.status = 'sent' FROM lifecycle.outbox o JOIN lifecycle.users u
	  ON u.id = o.user_id WHERE u.subject = 'after_unrouted'})
  or die 'routed message not sent';
is( $node->safe_psql(
		'postgres', q{SELECT o.status || ' ' || o.attempts || ' ' || (o.channel IS NULL)
		FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
		WHERE u.subject = 'nochannel'}),
	'unrouted 0 true',
	'a message without channel stays unrouted, for the application');
my $nochannel = $node->safe_psql('postgres',
	q{SELECT o.id FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	  WHERE u.subject = 'nochannel'});
ok(!grep({ $_->{id} eq $nochannel } $sink->records), 'the unrouted message was not sent');

# --- sovereignty: a channel for the EU only ------------------------------
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('eu', 'webhook', '$sink->{url}', '$secret',
		'{"regions": ["eu"]}');
	SELECT lifecycle_define_policy('eu_only', '{"channel": "eu"}');
	SELECT lifecycle_invite('eve', 'eve\@example.com', policy => 'eu_only', region => 'eu');
	SELECT lifecycle_invite('sam', 'sam\@example.com', policy => 'eu_only', region => 'us');
	SELECT lifecycle_invite('nor', 'nor\@example.com', policy => 'eu_only');
});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 3 FROM lifecycle.outbox WHERE channel = 'eu'
	  AND status IN ('sent', 'blocked')})
  or die 'eu messages not processed';
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(u.subject || ':' || o.status, ',' ORDER BY u.subject)
		FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
		WHERE o.channel = 'eu'}),
	'eve:sent,nor:blocked,sam:blocked',
	'only the served region is sent; others (and no region) are blocked');
like( $node->safe_psql(
		'postgres', q{SELECT last_error FROM lifecycle.comms
		WHERE channel = 'eu' AND status = 'blocked'}),
	qr/not served by channel "eu"|serves only regions/,
	'comms shows the blocked messages and why');
my $sam_id = $node->safe_psql('postgres',
	q{SELECT o.id FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	  WHERE u.subject = 'sam'});
ok(!grep({ $_->{id} eq $sam_id } $sink->records), 'the blocked message never left');

# --- erasure cancels pending messages and scrubs payloads ---------------
$sink->control(mode => 'fail');
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('zoe', 'zoe@example.com', policy => 'fast',
	  attrs => '{"secret_note": "do not keep"}')});
$node->poll_query_until('postgres',
	q{SELECT attempts >= 1 AND claimed_at IS NULL FROM lifecycle.outbox o
	  JOIN lifecycle.users u ON u.id = o.user_id WHERE u.subject = 'zoe'})
  or die 'zoe not attempted';
my $zoe = $node->safe_psql('postgres',
	q{SELECT id FROM lifecycle.users WHERE subject = 'zoe'});
$node->safe_psql('postgres', q{SELECT lifecycle_erase('zoe')});
is( $node->safe_psql(
		'postgres', qq{SELECT string_agg(status || ' ' || payload::text, ',')
		FROM lifecycle.outbox WHERE user_id = $zoe}),
	'cancelled {}',
	'erasure cancelled the pending message and scrubbed its payload');
is( $node->safe_psql(
		'postgres', qq{SELECT count(*) FROM lifecycle.outbox
		WHERE user_id = (SELECT id FROM lifecycle.users WHERE subject = 'alice')
		  AND payload = '{}'}),
	'0',
	'other users keep their payloads');
$sink->control(mode => 'ok');
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
is($node->safe_psql('postgres', q{SELECT lifecycle_retry_dead()}),
	'0', 'nothing dead to retry');
$node->safe_psql('postgres', q{SELECT lifecycle_travel('1 day')});
# The sender has nothing of zoe's left to send.
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('after', 'after@example.com', policy => 'fast')});
$node->poll_query_until('postgres',
	q{SELECT status = 'sent' FROM lifecycle.outbox o JOIN lifecycle.users u
	  ON u.id = o.user_id WHERE u.subject = 'after'})
  or die 'later message not sent';
is( $node->safe_psql(
		'postgres', qq{SELECT status FROM lifecycle.outbox WHERE user_id = $zoe}),
	'cancelled',
	'the cancelled message stays cancelled');
ok(!grep({ defined $_->{data}{attrs}{secret_note} && $_->{status} == 200 } $sink->records),
	'the erased user\'s message was never delivered');

$sink->stop;
$node->stop;
done_testing();
