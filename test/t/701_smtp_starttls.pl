# Copyright (c) lifecycle authors
#
# SMTP without TLS must be asked for: on an smtp:// target STARTTLS is
# required (with or without a username) unless the channel says
# "starttls": false, so a network attacker cannot strip it.  The local
# server (python3-aiosmtpd) offers no STARTTLS: a mail for a channel that
# does not say "starttls": false never reaches it; one that does is
# delivered in clear text; smtps:// stays implicit TLS.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = lc_node('starttls');
my $smtp = start_smtp_sink();
my $port = $smtp->{port};
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('plain', 'smtp', '$smtp->{url}', NULL,
		'{"from": "no-reply\@example.com"}');
	SELECT lifecycle_add_channel('clear', 'smtp', '$smtp->{url}', NULL,
		'{"from": "no-reply\@example.com", "starttls": false}');
	SELECT lifecycle_add_channel('implicit', 'smtp', 'smtps://127.0.0.1:$port', NULL,
		'{"from": "no-reply\@example.com"}');
	SELECT lifecycle_define_policy('plain', '{"channel": "plain"}');
	SELECT lifecycle_define_policy('clear', '{"channel": "clear"}');
	SELECT lifecycle_define_policy('implicit', '{"channel": "implicit"}');
	SELECT lifecycle_invite('p1', 'p1\@example.com', 't701', 'plain');
	SELECT lifecycle_invite('i1', 'i1\@example.com', 't701', 'implicit');
});

$node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM lifecycle.outbox
	  WHERE attempts >= 1 AND claimed_at IS NULL})
  or die 'mails not attempted';
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(channel || ' ' || status, ',' ORDER BY channel)
		FROM lifecycle.outbox}),
	'implicit pending,plain pending',
	'without "starttls": false a server without STARTTLS gets nothing (retried later)');
like( $node->safe_psql(
		'postgres', q{SELECT last_error FROM lifecycle.outbox WHERE channel = 'plain'}),
	qr/SSL|TLS|STARTTLS/i,
	'the error says TLS was not available');
is(scalar(my @none = $smtp->messages), 0, 'nothing was sent in clear text');

# Asked for: delivered in clear text.
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('c1', 'c1@example.com', 't701', 'clear')});
$node->poll_query_until('postgres',
	q{SELECT status = 'sent' FROM lifecycle.outbox WHERE channel = 'clear'})
  or die 'the clear-text mail was not sent';
my @mail = $smtp->messages;
is(scalar(@mail), 1, 'one mail arrived');
is_deeply($mail[0]{rcpt_tos}, ['c1@example.com'],
	'it is the one of the channel that says "starttls": false');

$smtp->stop;
$node->stop;
done_testing();
