# Copyright (c) lifecycle authors
#
# The built-in dsar workflow under the real scheduler and sender (no
# lifecycle_tick()): one subject runs the user lifecycle and two data
# subject requests at once (keys "a" by webhook, "b" by e-mail, to the
# loopback sinks of test/sinks/).  Every message of all three instances is
# delivered once, with the right data (a request's payload names its
# workflow and key, and the deadline it announces).  A worker outage
# across request b's extended deadline: lifecycle.violations lists the
# request while it is late; the catch-up skips the reminders that fell due
# after the deadline, moves it to overdue at the time it was due and counts
# its closing from then (DESIGN: lateness never extends retention); it is
# still answered.  Closed requests are erased keep_after_close later, and
# the subject's shared personal data with the last of them.  Erasure of a
# subject in the middle of a request ends the request too.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# max_sleep is an hour: the workers must be woken by the commits.
my $node = lc_node('dsar', "lifecycle.max_sleep = '1h'");
my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret);
my $smtp = start_smtp_sink();

$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_add_channel('mail', 'smtp', '$smtp->{url}', NULL,
		'{"from": "dpo\@example.com", "starttls": false}');
	SELECT lifecycle_define_policy('members', '{"channel": "hooks"}');
	SELECT lifecycle_define_policy('dsar_hooks', '{"workflow": "dsar", "channel": "hooks"}');
	SELECT lifecycle_define_policy('dsar_mail', '{"workflow": "dsar", "channel": "mail"}');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity
	WHERE backend_type IN ('lifecycle scheduler', 'lifecycle sender')})
  or die 'no workers';

sub sql { return $node->safe_psql('postgres', $_[0]); }

# An instance's column, by key ('' = the user lifecycle).
sub inst
{
	my ($subject, $key, $col) = @_;
	return sql(qq{SELECT $col FROM lifecycle.users
		WHERE tenant = 'acme' AND subject = '$subject' AND key = '$key'});
}

# The events of a request's history (also once it is erased).
sub events
{
	my ($id) = @_;
	return sql(qq{SELECT string_agg(event, ',' ORDER BY at, id)
		FROM lifecycle.history WHERE user_id = $id});
}

# Every message written so far, recorded before the outbox forgets it
# (outbox_retention): id => "message|instance id|channel".  Waits until
# everything routed has been delivered.
my %written;
sub delivered
{
	my ($what) = @_;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM lifecycle.outbox
		  WHERE status NOT IN ('sent', 'cancelled', 'unrouted')})
	  or die "messages not delivered: $what";
	for my $row (split /\n/,
		sql(q{SELECT id || '|' || message || '|' || user_id || '|' || channel || '|' || status
			FROM lifecycle.outbox}))
	{
		my ($id, $message, $uid, $channel, $status) = split /\|/, $row;
		$written{$id} = "$message|$uid|$channel" if $status eq 'sent';
	}
	return;
}

# Move the clock and wait for the scheduler to have nothing due.
sub travel
{
	my ($by) = @_;
	sql(qq{SELECT lifecycle_travel('$by')});
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM lifecycle.overdue})
	  or die "the scheduler did not catch up after travelling $by";
	return;
}

# --- receipt: a member files two requests ---------------------------------
sql(q{
	SELECT lifecycle_invite('dana', 'dana@example.com', 'acme', 'members',
		attrs => '{"name": "Dana"}');
	SELECT lifecycle_register('dana', 'acme');
	SELECT lifecycle_start('dsar', 'dana', 'acme', key => 'a', policy => 'dsar_hooks',
		data => '{"kind": "access"}');
	SELECT lifecycle_start('dsar', 'dana', 'acme', key => 'b', policy => 'dsar_mail',
		data => '{"kind": "erasure"}');
	SELECT lifecycle_start('dsar', 'fay', 'acme', key => 'c', policy => 'dsar_hooks',
		email => 'fay@example.com', data => '{"kind": "objection"}');
});
my $rc_ = inst('fay', 'c', 'id');
my $ra = inst('dana', 'a', 'id');
my $rb = inst('dana', 'b', 'id');
my $user = inst('dana', '', 'id');
is( sql(q{SELECT string_agg(workflow || ':' || key || ':' || state || ':' || policy, ','
		ORDER BY id) FROM lifecycle_instances('dana', 'acme')}),
	'user::active:members,dsar:a:received:dsar_hooks,dsar:b:received:dsar_mail',
	'the subject runs the user lifecycle and two requests');
is( sql(q{SELECT bool_and(deadline_at = created_at + interval '1 mon' AND deadline_event = 'respond')
		FROM lifecycle.users WHERE workflow = 'dsar'}),
	't', 'each request is due one month after its receipt');

# b is extended at once: the subject is told, with the new deadline.
is(sql(q{SELECT lifecycle_signal('dsar', 'dana', 'extend', 'acme', 'b')}),
	'extended', 'request b extended');
is(inst('dana', 'b', q{deadline_at = created_at + interval '1 mon' + interval '2 mons'}),
	't', 'the extended request is due three months after its receipt');
delivered('receipt');

# --- reminders and an answer in time -------------------------------------
travel('1 mon -7 days 1 hour');
is(events($ra), 'request,respond_reminder', 'a: first reminder, seven days before');
travel('6 days');
is(events($ra), 'request,respond_reminder,respond_reminder', 'a: second reminder, a day before');
is(events($rb), 'request,extend', 'b: no reminder before its extended deadline');
is(sql(q{SELECT lifecycle_signal('dsar', 'dana', 'answer', 'acme', 'a')}),
	'answered', 'request a answered in time');
is(inst('dana', 'a', q{deadline_event || ' ' || (deadline_at = state_since + interval '2 years')}),
	'close true', 'a is kept two years after its answer');
delivered('answer');

# --- a worker outage across b's deadline ---------------------------------
my $wake = sub {
	sql(q{SELECT last_wake FROM lifecycle.worker_stats WHERE worker = 'scheduler'});
};
my $before = $wake->();
sql(q{ALTER SYSTEM SET lifecycle.enabled = off; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	qq{SELECT last_wake > '$before' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
  or die 'the worker did not take the SIGHUP';
my $deadline_b = inst('dana', 'b', 'deadline_at');
# Five days past b's deadline (the travel so far: one month less a day).
sql(q{SELECT lifecycle_travel('2 mons 5 days')});
is( sql(qq{SELECT v.state || ' ' || v.deadline_event || ' ' || (v.deadline_at = '$deadline_b')
		|| ' ' || (v.overdue_by > interval '4 days')
		FROM lifecycle.violations v WHERE v.id = $rb}),
	'extended respond true true',
	'violations lists the late request, its deadline and how late');
is( sql(qq{SELECT count(*) FROM lifecycle.overdue WHERE id = $rb}),
	'1', 'overdue lists its timer');
is(events($rb), 'request,extend', 'nothing fires while the worker is off');
# Request c (another subject's) passed its one-month deadline during the
# outage too: it is late, not extendable any more (Art. 12(3): the
# extension is told within the first month).
is(sql(qq{SELECT count(*) FROM lifecycle.violations WHERE id = $rc_}),
	'1', 'violations lists the other late request');
# (lifecycle_signal() fires the request's due timers first: it is overdue
# for the application as soon as it is due, whatever the worker.)
my ($rc1, $out1, $err1) = $node->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT lifecycle_signal('dsar', 'fay', 'extend', 'acme', 'c')});
like($err1, qr/ERROR:\s+55000/, 'extending a request past its deadline is refused');
sql(q{ALTER SYSTEM RESET lifecycle.enabled; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	qq{SELECT state = 'overdue' FROM lifecycle.users WHERE id = $rb})
  or die 'the worker did not catch up with b';
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM lifecycle.overdue})
  or die 'the worker did not catch up';
like(events($rb), qr/^request,extend,(reminder_skipped,)+respond_due$/,
	'b: the reminders that fell due after the deadline skipped, then overdue');
is( sql(qq{SELECT count(*) FILTER (WHERE due_at = '$deadline_b' AND at > due_at + interval '4 days')
		FROM lifecycle.history WHERE user_id = $rb AND event = 'respond_due'}),
	'1', 'b went overdue at the time it was due, late');
is( sql(qq{SELECT (deadline_at = '$deadline_b'::timestamptz + interval '2 years')
		|| ' ' || (state_since > '$deadline_b'::timestamptz + interval '4 days')
		FROM lifecycle.users WHERE id = $rb}),
	'true true',
	'its closing counts from the due time, not from when it fired');
is(sql(qq{SELECT count(*) FROM lifecycle.violations WHERE id = $rb}),
	'0', 'no violation once the worker caught up');
is(sql(qq{SELECT count(*) FROM lifecycle.outbox WHERE user_id = $rb AND message = 'request_reminder'}),
	'0', 'no reminder sent after the deadline');
# An overdue request cannot be extended; it can be answered.
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT lifecycle_signal('dsar', 'dana', 'extend', 'acme', 'b')});
like($err, qr/ERROR:.*\n.*HINT:\s+An overdue request can be answered, not extended\./,
	'extending an overdue request is refused with its hint');
($rc, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT lifecycle_signal('dsar', 'dana', 'extend', 'acme', 'b')});
like($err, qr/ERROR:\s+55000/, '... as 55000');
is(sql(q{SELECT lifecycle_signal('dsar', 'dana', 'answer', 'acme', 'b')}),
	'answered', 'the overdue request answered after all');
is(sql(qq{SELECT state FROM lifecycle.users WHERE id = $rc_}), 'overdue',
	'the other late request is overdue after the catch-up');
sql(q{SELECT lifecycle_signal('dsar', 'fay', 'answer', 'acme', 'c')});
delivered('outage');

# --- erasure of a subject in the middle of a request ----------------------
sql(q{
	SELECT lifecycle_invite('eli', 'eli@example.com', 'acme', 'members');
	SELECT lifecycle_register('eli', 'acme');
	SELECT lifecycle_start('dsar', 'eli', 'acme', key => 'x', policy => 'dsar_hooks',
		data => '{"kind": "erasure"}');
});
my $x = inst('eli', 'x', 'id');
my $eli = inst('eli', '', 'id');
delivered('eli');
sql(q{SELECT lifecycle_erase('eli', 'acme', 'data subject request')});
is(sql(qq{SELECT state || ' ' || (subject IS NULL) FROM lifecycle.users WHERE id = $eli}),
	'erased true', 'the erasure ends the subject\'s user lifecycle');
is(sql(qq{SELECT state || ' ' || (subject IS NULL) || ' ' || (data = '{}')
		FROM lifecycle.users WHERE id = $x}),
	'erased true true', 'the erasure ends the open request too, with its data');
is(sql(qq{SELECT count(*) FROM lifecycle.erasures WHERE user_id IN ($eli, $x)}),
	'2', 'one evidence row per instance');
($rc, $out, $err) = $node->psql('postgres',
	q{SELECT * FROM lifecycle_instances('eli', 'acme')});
like($err, qr/subject does not exist/, 'the subject is unknown afterwards');
delivered('eli erased');

# --- every message delivered once, with the right data --------------------
my @recs = $sink->records;
my %hook_ids;
$hook_ids{ $_->{id} }++ for grep { $_->{status} >= 200 && $_->{status} < 300 } @recs;
my @mails = $smtp->messages;
my %mail_ids;
my %mail_to;
for my $m (@mails)
{
	my ($head) = split /\r\n\r\n/, $m->{raw}, 2;
	$head =~ s/\r\n[ \t]+/ /g;
	my %h = map { /^([^:]+):\s*(.*)$/ ? (lc($1) => $2) : () } split /\r\n/, $head;
	my ($id) = ($h{'message-id'} // '') =~ /^<lifecycle-(\d+)\@/;
	next unless defined $id;
	$mail_ids{$id}++;
	$mail_to{$id} = join(',', @{ $m->{rcpt_tos} }) . ' ' . ($h{'x-lifecycle-message'} // '');
}
my @by_hook = sort { $a <=> $b } grep { (split /\|/, $written{$_})[2] eq 'hooks' } keys %written;
my @by_mail = sort { $a <=> $b } grep { (split /\|/, $written{$_})[2] eq 'mail' } keys %written;
is(join(',', grep { ($hook_ids{$_} // 0) != 1 } @by_hook), '',
	'every webhook message arrived exactly once');
is(join(',', grep { ($mail_ids{$_} // 0) != 1 } @by_mail), '',
	'every e-mail arrived exactly once');
is(scalar(keys %hook_ids) + scalar(keys %mail_ids), scalar(keys %written),
	'nothing else arrived');
is(scalar(grep { !$_->{valid} } @recs), 0, 'every webhook signature is valid');

# What each instance was told, in order.
sub told
{
	my ($uid) = @_;
	return join(',', map { (split /\|/, $written{$_})[0] }
		  sort { $a <=> $b } grep { (split /\|/, $written{$_})[1] == $uid } keys %written);
}
is(told($ra), 'request_received,request_reminder,request_reminder,request_answered',
	'request a: received, two reminders, answered (webhooks)');
is(told($rb), 'request_received,request_extended,request_overdue,request_answered',
	'request b: received, extended, overdue, answered (e-mails)');
like(told($user), qr/^invite(,|$)/, 'the user lifecycle\'s messages beside them');
is(join(',', sort map { $mail_to{$_} } @by_mail),
	join(',', sort map { 'dana@example.com ' . (split /\|/, $written{$_})[0] } @by_mail),
	'each e-mail went to the subject, naming its message');

# The webhook payloads of request a.
my %rec = map { $_->{id} => $_ } @recs;
my $deadline_a = sql(qq{SELECT extract(epoch FROM created_at + interval '1 mon') FROM lifecycle.users WHERE id = $ra});
for my $id (grep { (split /\|/, $written{$_})[1] == $ra } @by_hook)
{
	my $r = $rec{$id};
	my $d = $r->{data};
	my $type = $r->{type};
	is(join(' ', map { $d->{$_} // 'null' } qw(workflow key subject tenant email policy)),
		'dsar a dana acme dana@example.com dsar_hooks', "$type ($id): its request and subject");
	is($d->{attrs}{name}, 'Dana', "$type ($id): the subject's attrs");
	my %state = (request_received => 'received', request_reminder => 'received',
		request_answered => 'answered');
	is($d->{state}, $state{$type}, "$type ($id): the state entered");
	if ($type eq 'request_answered')
	{
		ok(!defined $d->{archive_at}, "$type ($id): announces no deadline");
	}
	else
	{
		my $at = defined $d->{archive_at}
		  ? sql(qq{SELECT extract(epoch FROM '$d->{archive_at}'::timestamptz)})
		  : 'none';
		is($at, $deadline_a, "$type ($id): carries the answer's deadline");
	}
}
# The user lifecycle's payloads stay as in 0.2.0.
ok(!grep({ (split /\|/, $written{$_})[1] == $user && exists $rec{$_}{data}{workflow} } @by_hook),
	'the user lifecycle\'s payloads name no workflow');
like(told($rc_), qr/^request_received,request_reminder,request_reminder,(request_extended,)?request_overdue,request_answered$/,
	'request c: received, two reminders, overdue after the outage, answered');

# --- closed requests are erased keep_after_close later ----------------------
travel('2 years 1 mon');
is( sql(qq{SELECT string_agg(state || ' ' || (subject IS NULL) || ' ' || (email IS NULL)
		|| ' ' || (data = '{}'), ',' ORDER BY id) FROM lifecycle.users WHERE id IN ($ra, $rb, $rc_)}),
	'erased true true true,erased true true true,erased true true true',
	'the requests erased by their own timers, with their data');
is( sql(qq{SELECT string_agg(state_before, ',' ORDER BY user_id) FROM lifecycle.erasures
		WHERE user_id IN ($ra, $rb, $rc_)}),
	'answered,answered,answered', 'one evidence row each, from the state they were kept in');
is( sql(q{SELECT count(*) FROM lifecycle.users WHERE tenant = 'acme' AND email = 'dana@example.com'}),
	'0', 'the subject\'s shared personal data is gone with the last instance');
($rc, $out, $err) = $node->psql('postgres',
	q{SELECT * FROM lifecycle_instances('dana', 'acme')});
like($err, qr/subject does not exist/, 'the subject is unknown afterwards');

$sink->stop;
$smtp->stop;
$node->stop;
done_testing();
