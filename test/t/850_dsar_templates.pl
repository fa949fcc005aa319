# Copyright (c) lifecycle authors
#
# The built-in dsar workflow's messages as e-mails (sql/workflows/dsar.json,
# "messages"): each of the six renders from the workflow's own template,
# in plain ASCII English with CRLF lines, every placeholder filled, the
# answer's deadline shown where the message announces one; and the sender
# reads the template of the message's own workflow (a started dsar
# request's message delivered through a real SMTP server, beside a user
# invitation).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = lc_node('dsar_templates');
my $smtp = start_smtp_sink();

my $options = '{"from": "dpo@example.com", "starttls": false}';
my $payload = q{{"subject": "ann", "tenant": "acme", "email": "ann@example.com",
	"region": null, "policy": "dsar", "state": "received", "attrs": {"name": "Ann"},
	"archive_at": "2027-03-31T09:30:00+00:00"}};

# message => [subject, whether the body shows the deadline]
my %expect = (
	request_received => [ 'We have received your data protection request', 1 ],
	request_reminder => [ 'Your data protection request: our answer is due by 2027-03-31', 1 ],
	request_extended => [ 'We need more time to answer your data protection request', 1 ],
	request_answered => [ 'We have answered your data protection request', 0 ],
	request_refused  => [ 'We cannot act on your data protection request', 0 ],
	request_overdue  => [ 'Our answer to your data protection request is late', 0 ],);

# The messages dsar declares are exactly these.
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(m, ',' ORDER BY m)
		    FROM jsonb_object_keys(lifecycle_workflow('dsar') -> 'messages') m}),
	join(',', sort keys %expect),
	'dsar declares the six messages');

for my $message (sort keys %expect)
{
	my ($subject, $dated) = @{ $expect{$message} };
	my $mail = $node->safe_psql('postgres',
		"SELECT lifecycle._render_mail('dsar', '$message', '$payload', '$options')");
	my ($head, $body) = split /\r\n\r\n/, $mail, 2;
	my %h = map { /^([^:]+):\s*(.*)$/ ? (lc($1) => $2) : () } split /\r\n/, $head;

	is($h{subject}, $subject, "$message: subject");
	is($h{to}, '<ann@example.com>', "$message: to the data subject");
	is($h{'x-lifecycle-message'}, $message, "$message: X-Lifecycle-Message");
	unlike($mail, qr/\{\{|\}\}/, "$message: every placeholder filled");
	unlike($mail, qr/(?<!\r)\n/, "$message: CRLF line ends only");
	unlike($mail, qr/[^\x09\x0a\x0d\x20-\x7e]/, "$message: plain ASCII");
	like($body, qr/\AHello,\r\n\r\n/, "$message: greeting");
	like($body, qr/\r\n\r\nData Protection Officer\r\n\z/, "$message: signed");
	ok(!grep({ length($_) > 78 } split /\r\n/, $body), "$message: lines of at most 78 characters");
	if ($dated)
	{
		like($body, qr/at the latest by 2027-03-31\.\r\n/, "$message: shows the deadline");
	}
	else
	{
		unlike($body, qr/2027/, "$message: announces no deadline");
	}
}

# The sender reads each message's template from its own workflow: a
# dsar request started under a policy with an smtp channel arrives with
# dsar's text and the instance's answer deadline, a user invitation
# through the same channel with the user workflow's.
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('mail', 'smtp', '$smtp->{url}', NULL, '$options');
	SELECT lifecycle_define_policy('dsar_mail', '{"workflow": "dsar", "channel": "mail"}');
	SELECT lifecycle_define_policy('user_mail', '{"channel": "mail"}');
	SELECT lifecycle_invite('bo', 'bo\@example.com', 'acme', 'user_mail');
	SELECT lifecycle_start('dsar', 'cy', 'acme', policy => 'dsar_mail',
		email => 'cy\@example.com');
});
my $deadline = $node->safe_psql('postgres',
	q{SELECT substr(payload ->> 'archive_at', 1, 10) FROM lifecycle.outbox
	   WHERE message = 'request_received'});
like($deadline, qr/^\d{4}-\d{2}-\d{2}$/, 'the request\'s message carries its deadline');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 2 AND bool_and(status = 'sent') FROM lifecycle.outbox
	   WHERE channel = 'mail'})
  or die 'mails not sent';

my %got;
for my $m ($smtp->messages)
{
	my ($head, $body) = split /\r\n\r\n/, $m->{raw}, 2;
	my %h = map { /^([^:]+):\s*(.*)$/ ? (lc($1) => $2) : () } split /\r\n/, $head;
	$got{ $h{'x-lifecycle-message'} } = [ $m->{rcpt_tos}[0], $h{subject}, $body ];
}
is_deeply(
	[ @{ $got{request_received} }[ 0, 1 ] ],
	[ 'cy@example.com', $expect{request_received}[0] ],
	'sender: the dsar instance gets dsar\'s template');
like($got{request_received}[2], qr/at the latest by \Q$deadline\E\./,
	'sender: with its deadline');
is_deeply(
	[ @{ $got{invite} }[ 0, 1 ] ],
	[ 'bo@example.com', 'You are invited to acme' ],
	'sender: the user instance gets the user workflow\'s template');

$smtp->stop;
$node->stop;
done_testing();
