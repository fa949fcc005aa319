# Copyright (c) lifecycle authors
#
# E-mail through libcurl SMTP to a local server (python3-aiosmtpd): every
# message of a lifecycle arrives as a mail with From, To, Subject, Date and
# Message-ID (from the message id), its body rendered from the default
# template set with the user's attrs and the built-ins (archive date, the
# channel's link_base); channel templates and per-policy templates replace
# the defaults; non-ASCII subjects are RFC 2047 encoded.
use strict;
use warnings FATAL => 'all';
use Encode qw(decode);
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = lc_node('smtp');
my $smtp = start_smtp_sink();
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('mail', 'smtp', '$smtp->{url}', NULL, '{
		"from": "no-reply\@example.com", "starttls": false,
		"link_base": "https://app.example.com/welcome",
		"templates": {"archived": {"subject": "Au revoir {{name}} \xe2\x80\x94 {{tenant}}"}},
		"policy_templates": {"special": {"invite": {
			"subject": "Your {{attrs.plan}} plan awaits",
			"body": "Dear {{name}},\\nplan {{plan}}, unknown [{{nothing_here}}], id {{id}}.\\n.\\nEnd."}}}
	}');
	SELECT lifecycle_define_policy('m', '{
		"channel": "mail",
		"invite_reminders": ["1 day"], "invite_expires_after": "3 days",
		"dormant_after": "10 days", "archive_after": "5 days",
		"archive_reminders": ["2 days"], "erase_after": "30 days"}');
	SELECT lifecycle_define_policy('special', '{"channel": "mail"}');
});

sub tick
{
	my ($travel) = @_;
	$node->safe_psql('postgres',
		"SELECT lifecycle_travel('$travel'); SELECT lifecycle_tick();");
}

$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('alice', 'alice@example.com', 'acme', 'm',
	  attrs => '{"name": "Alice", "plan": "gold"}')});
tick('25 hours');
$node->safe_psql('postgres', q{SELECT lifecycle_register('alice', 'acme')});
tick('11 days');
tick('4 days');
tick('2 days');
$node->safe_psql('postgres', q{SELECT lifecycle_restore('alice', 'acme')});
$node->safe_psql('postgres',
	q{SELECT lifecycle_invite('bob', 'bob@example.com', 'acme', 'special',
	  attrs => '{"name": "Bob", "plan": "gold"}')});

$node->poll_query_until('postgres',
	q{SELECT bool_and(status = 'sent') FROM lifecycle.outbox})
  or die 'mails not sent';
my @outbox = split /\n/,
  $node->safe_psql('postgres',
	q{SELECT o.id || '|' || o.message || '|' || u.email || '|' ||
	  coalesce(substr(o.payload ->> 'archive_at', 1, 10), '')
	  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id ORDER BY o.id});
is(scalar(@outbox), 7, '7 messages written');

my %mail;
for my $m ($smtp->messages)
{
	my ($head, $body) = split /\r\n\r\n/, $m->{raw}, 2;
	$head =~ s/\r\n[ \t]+/ /g;    # unfold
	my %h = map { /^([^:]+):\s*(.*)$/ ? (lc($1) => $2) : () } split /\r\n/, $head;
	my ($id) = ($h{'message-id'} // '') =~ /^<lifecycle-(\d+)\@example\.com>$/;
	ok(defined $id, "Message-ID from the message id: $h{'message-id'}");
	$mail{$id} = { %$m, h => \%h, body => $body,
		subject => decode('MIME-Header', $h{subject}) };
}
is(scalar(keys %mail), 7, 'every message arrived as one mail');

my %by_message;
for my $row (@outbox)
{
	my ($id, $message, $email, $archive_date) = split /\|/, $row;
	my $m = $mail{$id};
	ok($m, "$message ($id) arrived") or next;
	is($m->{mail_from}, 'no-reply@example.com', "$message: envelope sender");
	is_deeply($m->{rcpt_tos}, [$email], "$message: envelope recipient");
	is($m->{h}{from}, '<no-reply@example.com>', "$message: From");
	is($m->{h}{to}, "<$email>", "$message: To");
	like($m->{h}{date}, qr/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/,
		"$message: Date");
	is($m->{h}{'x-lifecycle-message'}, $message, "$message: X-Lifecycle-Message");
	$m->{archive_date} = $archive_date;
	$by_message{ $m->{rcpt_tos}[0] . ':' . $message } = $m;
}

my $a = 'alice@example.com';
is($by_message{"$a:invite"}{subject}, 'You are invited to acme', 'invite: default subject');
like($by_message{"$a:invite"}{body}, qr{register with this e-mail address: https://app\.example\.com/welcome\r\n},
	'invite: link_base in the body, CRLF line ends');
is($by_message{"$a:invite_reminder"}{subject},
	'Reminder: your invitation to acme is waiting', 'invite_reminder: default subject');
my $notice = $by_message{"$a:archive_notice"};
ok($notice->{archive_date} =~ /^\d{4}-\d{2}-\d{2}$/, 'the archive notice carries a date');
is($notice->{subject}, "Your acme account will be archived on $notice->{archive_date}",
	'archive_notice: subject with the archive date');
like($notice->{body}, qr/Your account alice with acme has not been used/,
	'archive_notice: subject and tenant in the body');
like($notice->{body}, qr/will be archived on \Q$notice->{archive_date}\E\./,
	'archive_notice: the archive date in the body');
my $reminder = $by_message{"$a:archive_reminder"};
is($reminder->{subject},
	"Reminder: your acme account will be archived on $reminder->{archive_date}",
	'archive_reminder: subject with the archive date');
is($by_message{"$a:archived"}{subject}, "Au revoir Alice \x{2014} acme",
	'archived: the channel template, attrs and a non-ASCII subject');
like($by_message{"$a:archived"}{h}{subject}, qr/^=\?UTF-8\?B\?/,
	'archived: the subject is RFC 2047 encoded');
like($by_message{"$a:archived"}{body}, qr/has been archived following/,
	'archived: default body kept when the template gives only a subject');
is($by_message{"$a:restored"}{subject}, 'Welcome back to acme', 'restored: default subject');
like($by_message{"$a:restored"}{body},
	qr{set a new password before you sign in: https://app\.example\.com/welcome},
	'restored: tells the user how to get back in');

my $bob = $by_message{'bob@example.com:invite'};
my ($bob_id) = map { (split /\|/)[0] } grep { /\|bob\@example\.com\|/ } @outbox;
is($bob->{subject}, 'Your gold plan awaits', 'policy template: subject from attrs.plan');
is($bob->{body}, "Dear Bob,\r\nplan gold, unknown [], id $bob_id.\r\n.\r\nEnd.\r\n",
	'policy template: attrs, unknown placeholder empty, id, a lone dot kept');

# STARTTLS required (explicitly, or with credentials; test/t/701 without
# either): this server offers no TLS, so nothing is sent in clear text.
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('tls', 'smtp', '$smtp->{url}', NULL,
		'{"from": "no-reply\@example.com", "starttls": true}');
	SELECT lifecycle_add_channel('auth', 'smtp', '$smtp->{url}', 'pw',
		'{"from": "no-reply\@example.com", "username": "lifecycle"}');
	SELECT lifecycle_define_policy('tls', '{"channel": "tls"}');
	SELECT lifecycle_define_policy('auth', '{"channel": "auth"}');
	SELECT lifecycle_invite('carol', 'carol\@example.com', 'acme', 'tls');
	SELECT lifecycle_invite('dave', 'dave\@example.com', 'acme', 'auth');
});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM lifecycle.outbox WHERE channel IN ('tls', 'auth')
	  AND attempts = 1 AND claimed_at IS NULL})
  or die 'TLS-required mails not attempted';
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(channel || ' ' || status, ',' ORDER BY channel)
		FROM lifecycle.outbox WHERE channel IN ('tls', 'auth')}),
	'auth pending,tls pending',
	'mails that require STARTTLS fail (and will be retried)');
like( $node->safe_psql(
		'postgres', q{SELECT last_error FROM lifecycle.outbox WHERE channel = 'tls'}),
	qr/SSL|TLS|STARTTLS/i,
	'the error says TLS was not available');
is(scalar(my @all = $smtp->messages), 7, 'nothing was sent in clear text');

$smtp->stop;
$node->stop;
done_testing();
