# Copyright (c) lifecycle authors
#
# With lifecycle.allow_private_targets off, deliveries to loopback,
# private, link-local, shared, multicast and unspecified addresses are
# refused at connect time, whatever the URL looks like (IPv6, IPv4 inside
# IPv6, a name that resolves to loopback, a number): the message is dead
# with a clear error and the receiver, listening on 127.0.0.1, gets
# nothing.  Redirects are never followed (checked on a second server that
# may reach the loopback receivers, since nothing else is reachable here).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret);
my $port = $sink->{port};

my $node = lc_node('ssrf', 'lifecycle.allow_private_targets = off',
	"lifecycle.http_timeout = '5s'");
is($node->safe_psql('postgres', 'SHOW lifecycle.allow_private_targets'),
	'off', 'private targets are not allowed');

my @targets = (
	[ 'loopback', "http://127.0.0.1:$port/hook", qr/127\.0\.0\.1 refused: loopback address/ ],
	[ 'private', "http://10.0.0.1:$port/hook", qr/10\.0\.0\.1 refused: private address/ ],
	[ 'metadata', 'http://169.254.169.254/latest/meta-data/', qr/169\.254\.169\.254 refused: link-local address/ ],
	[ 'ipv6_loopback', "http://[::1]:$port/hook", qr/::1 refused: loopback address/ ],
	[ 'mapped', "http://[::ffff:127.0.0.1]:$port/hook", qr/::ffff:127\.0\.0\.1 refused: loopback address/ ],
	[ 'name', "http://localhost:$port/hook", qr/(127\.0\.0\.1|::1) refused: loopback address/ ],
	[ 'number', "http://2130706433:$port/hook", qr/127\.0\.0\.1 refused: loopback address/ ],
	[ 'unspecified', "http://0.0.0.0:$port/hook", qr/0\.0\.0\.0 refused: unspecified address/ ],
	[ 'shared', 'http://100.64.0.1/hook', qr/100\.64\.0\.1 refused: shared \(carrier-grade NAT\) address/ ],
	[ 'ula', 'http://[fd00::1]/hook', qr/fd00::1 refused: private \(unique local\) address/ ],
	[ 'link_local6', 'http://[fe80::1]/hook', qr/fe80::1 refused: link-local address/ ],
	[ 'multicast', 'http://224.0.0.1/hook', qr/224\.0\.0\.1 refused: multicast address/ ],
	[ 'https_loopback', "https://127.0.0.1:$port/hook", qr/127\.0\.0\.1 refused: loopback address/ ],);

for my $t (@targets)
{
	my ($name, $url) = @$t;
	$node->safe_psql(
		'postgres', qq{
		SELECT lifecycle_add_channel('$name', 'webhook', '$url', '$secret');
		SELECT lifecycle_define_policy('$name', '{"channel": "$name"}');
		SELECT lifecycle_invite('$name', '$name\@example.com', policy => '$name');
	});
}
$node->poll_query_until('postgres',
	q{SELECT count(*) FILTER (WHERE status = 'dead') = count(*) FROM lifecycle.outbox})
  or die 'refused messages not dead';

for my $t (@targets)
{
	my ($name, $url, $re) = @$t;
	my $err = $node->safe_psql('postgres',
		"SELECT attempts || ' ' || last_error FROM lifecycle.dead_letters WHERE channel = '$name'");
	like($err,
		qr/^1 destination \S+ refused: .* address \(lifecycle\.allow_private_targets is off\)$/,
		"$name: dead after one attempt, refused");
	like($err, $re, "$name: the error names the address and why");
}
is(scalar(my @r = $sink->records), 0, 'the loopback receiver got nothing');

# A channel may also be an smtp server on loopback: refused the same way.
my $smtp = start_smtp_sink();
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('mail', 'smtp', '$smtp->{url}', NULL,
		'{"from": "no-reply\@example.com"}');
	SELECT lifecycle_define_policy('mail', '{"channel": "mail"}');
	SELECT lifecycle_invite('mailuser', 'mailuser\@example.com', policy => 'mail');
});
$node->poll_query_until('postgres',
	q{SELECT status = 'dead' FROM lifecycle.outbox WHERE channel = 'mail'})
  or die 'smtp message not refused';
like( $node->safe_psql(
		'postgres', q{SELECT last_error FROM lifecycle.outbox WHERE channel = 'mail'}),
	qr/127\.0\.0\.1 refused: loopback address/,
	'smtp to loopback refused');
is(scalar(my @m = $smtp->messages), 0, 'the loopback mail server got nothing');

# Once the operator allows private targets, retry_dead delivers.
$node->append_conf('postgresql.conf', 'lifecycle.allow_private_targets = on');
$node->restart;
is($node->safe_psql('postgres', q{SELECT lifecycle_retry_dead('loopback')}),
	'1', 'retry_dead requeues the refused message');
$node->poll_query_until('postgres',
	q{SELECT status = 'sent' FROM lifecycle.outbox WHERE channel = 'loopback'})
  or die 'loopback message not delivered once allowed';
is(scalar(my @ok = $sink->ok_ids), 1, 'delivered once allowed');
$node->stop;

# --- redirects are not followed --------------------------------------------
my $target = start_webhook_sink(secret => $secret);
my $redirector = start_webhook_sink(
	secret => $secret,
	mode => 'redirect',
	redirect_to => "http://127.0.0.1:$target->{port}/hook");
my $node2 = lc_node('redirect', 'lifecycle.max_attempts = 1');
$node2->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('redir', 'webhook', '$redirector->{url}', '$secret');
	SELECT lifecycle_define_policy('redir', '{"channel": "redir"}');
	SELECT lifecycle_invite('r', 'r\@example.com', policy => 'redir');
});
$node2->poll_query_until('postgres',
	q{SELECT status = 'dead' FROM lifecycle.outbox})
  or die 'redirected message not dead';
is( $node2->safe_psql('postgres', q{SELECT last_error FROM lifecycle.dead_letters}),
	'HTTP 302: redirects are not followed',
	'a redirect is an error, not followed');
is(scalar(my @rr = $redirector->records), 1, 'the redirecting receiver got the request');
is(scalar(my @tr = $target->records), 0, 'the redirect target got nothing');

# --- turning the setting off also closes kept-alive connections ----------
my $keep = start_webhook_sink(secret => $secret);
my $node3 = lc_node('keepalive', "lifecycle.max_sleep = '100ms'");
$node3->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('k', 'webhook', '$keep->{url}', '$secret');
	SELECT lifecycle_define_policy('k', '{"channel": "k"}');
	SELECT lifecycle_invite('k1', 'k1\@example.com', policy => 'k');
});
$node3->poll_query_until('postgres', q{SELECT status = 'sent' FROM lifecycle.outbox})
  or die 'first message not sent';
$node3->safe_psql('postgres',
	q{ALTER SYSTEM SET lifecycle.allow_private_targets = off; SELECT pg_reload_conf()});
# A new session sees the new value once the postmaster has reloaded (and
# signalled the workers); two sender passes later it has reloaded too.
$node3->poll_query_until('postgres', q{SELECT current_setting('lifecycle.allow_private_targets') = 'off'})
  or die 'not reloaded';
for (1 .. 2)
{
	my $t = $node3->safe_psql('postgres', 'SELECT clock_timestamp()');
	$node3->poll_query_until('postgres',
		qq{SELECT last_wake > '$t' FROM lifecycle.worker_stats WHERE worker = 'sender'})
	  or die 'sender did not wake';
}
$node3->safe_psql('postgres',
	q{SELECT lifecycle_invite('k2', 'k2@example.com', policy => 'k')});
$node3->poll_query_until('postgres',
	q{SELECT status <> 'pending' FROM lifecycle.outbox o JOIN lifecycle.users u
	  ON u.id = o.user_id WHERE u.subject = 'k2'})
  or die 'second message not processed';
like( $node3->safe_psql(
		'postgres', q{SELECT o.status || ': ' || o.last_error FROM lifecycle.outbox o
		JOIN lifecycle.users u ON u.id = o.user_id WHERE u.subject = 'k2'}),
	qr/^dead: destination 127\.0\.0\.1 refused: loopback address/,
	'no request rides on a connection opened while private targets were allowed');
is(scalar(my @kr = $keep->records), 1, 'the receiver got only the first message');
$node3->stop;
$keep->stop;

$redirector->stop;
$target->stop;
$smtp->stop;
$sink->stop;
$node2->stop;
done_testing();
