# Copyright (c) lifecycle authors
#
# lifecycle_signal() while the worker is late, under the real scheduler
# and sender (issue 18; DESIGN "Decisions that complete the table": late
# timers; "The built-in dsar workflow": once a request is overdue it can
# be answered, not extended).  The worker is disabled across a request's
# answer deadline: extend is refused with 55000 and its hint, nothing
# written; answer fires the request's due timers first, exactly as the
# worker would (reminders skipped after the deadline, overdue at the time
# it was due, the subject told), then answers.  When the worker is back it
# fires nothing more for that request (every history row and message
# once, delivered once), catches up with the other request the same way,
# and the counts kept equal a full count (test/model/counts.py).  A new
# request of a subject on legal hold starts held under the worker too: no
# timer of it fires until the release.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = lc_node('signal_late', "lifecycle.max_sleep = '1h'", "timezone = 'UTC'");
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $secret = lc_secret();
my $sink = start_webhook_sink(secret => $secret);

sub sql { return $node->safe_psql('postgres', $_[0]); }

$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('dsar_hooks', '{"workflow": "dsar", "channel": "hooks",
		"respond_within": "30 days", "outbox_retention": "1 year"}');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity
	WHERE backend_type IN ('lifecycle scheduler', 'lifecycle sender')})
  or die 'no workers';

# A request's column, by key.
sub req
{
	my ($key, $col) = @_;
	return sql(qq{SELECT $col FROM lifecycle.users WHERE tenant = 'acme' AND key = '$key'});
}

# The history of an instance: event/due time after receipt/actor.
sub hist
{
	my ($id) = @_;
	return sql(qq{SELECT string_agg(h.event || '/' || coalesce((h.due_at - u.created_at)::text, '-')
		|| '/' || CASE WHEN h.actor = 'lifecycle worker' THEN 'worker' ELSE 'caller' END,
		',' ORDER BY h.at, h.id)
		FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
		WHERE h.user_id = $id});
}

# Wait until every routed message is delivered.
sub delivered
{
	my ($what) = @_;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM lifecycle.outbox
		  WHERE status NOT IN ('sent', 'cancelled', 'unrouted')})
	  or die "messages not delivered: $what";
	return;
}

# The counts kept equal a full count (the check of test/model/counts.py).
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
sub counts_exact
{
	my ($what) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $python, "$FindBin::RealBin/../model/counts.py",
			'--dsn', $dsn, '--check-only' ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "counts kept equal a full count: $what") or diag($stdout . $stderr);
	return;
}

# --- two requests filed; the worker goes down ------------------------------
sql(q{
	SELECT lifecycle_start('dsar', 'dana', 'acme', key => 'a', policy => 'dsar_hooks',
		email => 'dana@example.com');
	SELECT lifecycle_start('dsar', 'dana', 'acme', key => 'b', policy => 'dsar_hooks');
});
my $ra = req('a', 'id');
my $rb = req('b', 'id');
delivered('receipt');

my $wake = sub {
	sql(q{SELECT last_wake FROM lifecycle.worker_stats WHERE worker = 'scheduler'});
};
my $before = $wake->();
sql(q{ALTER SYSTEM SET lifecycle.enabled = off; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	qq{SELECT last_wake > '$before' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
  or die 'the worker did not take the SIGHUP';
sql(q{SELECT lifecycle_travel('32 days')});
is(req('a', 'state'), 'received', 'a is still received in the table: the worker is down');
is(sql(qq{SELECT count(*) FROM lifecycle.violations WHERE id IN ($ra, $rb)}), '2',
	'violations lists both late requests');

# --- extend is refused, answer answers the overdue request -----------------
my ($rc, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT lifecycle_signal('dsar', 'dana', 'extend', 'acme', 'a')});
like($err, qr/ERROR:\s+55000/, 'extending a request past its deadline is refused (55000)');
like($err, qr/HINT:\s+An overdue request can be answered, not extended\./, '... with its hint');
is(hist($ra), 'request/-/caller', 'the refusal wrote nothing');
is(sql(q{SELECT lifecycle_signal('dsar', 'dana', 'answer', 'acme', 'a')}), 'answered',
	'the overdue request is answered');
is( hist($ra),
	'request/-/caller,reminder_skipped/23 days/worker,reminder_skipped/29 days/worker,'
	  . 'respond_due/30 days/worker,answer/-/caller',
	'its due timers fired first, as the worker fires them, then the answer')
  or diag(req('a', 'created_at'));
is( sql(qq{SELECT string_agg(message, ',' ORDER BY id) FROM lifecycle.outbox WHERE user_id = $ra}),
	'request_received,request_overdue,request_answered',
	'the subject told it was overdue, then answered; no reminder after the deadline');
counts_exact('during the outage');

# --- the worker is back ---------------------------------------------------
sql(q{ALTER SYSTEM RESET lifecycle.enabled; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', qq{SELECT state = 'overdue' FROM lifecycle.users WHERE id = $rb})
  or die 'the worker did not catch up with b';
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM lifecycle.overdue})
  or die 'the worker did not catch up';
delivered('catch-up');
is( hist($ra),
	'request/-/caller,reminder_skipped/23 days/worker,reminder_skipped/29 days/worker,'
	  . 'respond_due/30 days/worker,answer/-/caller',
	'the worker fired nothing more for a');
is( hist($rb),
	'request/-/caller,reminder_skipped/23 days/worker,reminder_skipped/29 days/worker,'
	  . 'respond_due/30 days/worker',
	'it caught up with b exactly as the signal did with a');
is( sql(qq{SELECT count(*) FROM lifecycle.outbox WHERE user_id = $ra AND status = 'sent'}),
	'3', "a's three messages sent");
is( sql(q{SELECT count(*) FROM (SELECT user_id, message FROM lifecycle.outbox
		GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no message written twice');
counts_exact('after the catch-up');

# --- a held subject's new request starts held, under the worker -----------
sql(q{
	SELECT lifecycle_start('dsar', 'hal', 'acme', key => 'h1', policy => 'dsar_hooks',
		email => 'hal@example.com');
	SELECT lifecycle_hold('hal', 'acme', 'litigation');
	SELECT lifecycle_start('dsar', 'hal', 'acme', key => 'h2', policy => 'dsar_hooks');
});
is(req('h2', q{held || ' ' || coalesce(next_at::text, 'none') || ' ' || hold_reason}),
	'true none litigation', 'the new request starts held: no timer');
sql(q{SELECT lifecycle_travel('31 days')});
my $h2 = req('h2', 'id');
# The scheduler runs (a commit wakes it); nothing of hal's is due.
sql(q{SELECT lifecycle_invite('wake', 'wake@example.com', 'acme')});
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM lifecycle.overdue})
  or die 'the worker is not idle';
is(hist($h2), 'request/-/caller,hold/-/caller', 'no timer fired for the held request');
sql(q{SELECT lifecycle_release('hal', 'acme')});
$node->poll_query_until('postgres', qq{SELECT state = 'overdue' FROM lifecycle.users WHERE id = $h2})
  or die 'the released request did not go overdue';
like(hist($h2), qr{^request/-/caller,hold/-/caller,release/-/caller,(reminder_skipped/[^,]+/worker,)+respond_due/30 days/worker$},
	'the release re-armed it and the worker caught up');
delivered('release');
counts_exact('after the release');

$node->stop;
done_testing();
