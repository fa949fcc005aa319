# Copyright (c) lifecycle authors
#
# OpenTelemetry traces (issue 19), against a real OTLP/HTTP receiver on
# loopback (test/sinks/otlp_sink.py) with the real workers: a user's whole
# life, from invite to erasure, arrives as one trace of short spans with
# the right names, kinds, times and attributes; each webhook delivery is a
# CLIENT span in that trace, linked to the transition that wrote the
# message, and the webhook's traceparent header names it; each scheduler
# batch is a "lifecycle tick" span; a rolled-back transition has no span;
# an application's traceparent makes its call's span a child of its own
# span (linked to the instance's trace), a malformed one is a WARNING
# only; lifecycle.otel_headers goes to the collector and is readable by
# superusers only; and no span, attribute or resource holds any subject,
# e-mail or attrs value the test used.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $otlp = start_otlp_sink();
my $hooks = start_webhook_sink(secret => lc_secret());
my $node = lc_node('otel',
	"lifecycle.otel_endpoint = '$otlp->{url}/'",
	"lifecycle.otel_service_name = 'lc-test'",
	"lifecycle.otel_headers = 'x-api-key=otel-key-31337,x-scope=ops'",
	"lifecycle.max_sleep = 500");
my $secret = lc_secret();

# Every value that identifies a person in this test; none may reach the
# collector.
my @personal = ('otel-alice-subj', 'otel.alice@example.org', 'needle-otel-555',
	'Alice Otel', 'otel-bob-subj', 'otel.bob@example.org', 'needle-bob-777',
	'otel-rolled-back', 'rolled.back@example.org', 'otel-carol-subj',
	'otel.carol@example.org');

$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$hooks->{url}?token=q-secret', '$secret');
	SELECT lifecycle_define_policy('fast', '{
		"channel": "hooks",
		"invite_reminders": ["1 day"], "invite_expires_after": "3 days",
		"dormant_after": "10 days", "archive_after": "5 days",
		"archive_reminders": ["2 days"], "erase_after": "30 days"}');
	CREATE ROLE app LOGIN IN ROLE lifecycle_app;
});

sub spans_of
{
	my ($id) = @_;
	return grep {
		my $a = LifecycleSinks::Otlp::attrs($_);
		defined $a->{'lifecycle.instance.id'}
		  && $a->{'lifecycle.instance.id'} eq $id
	} $otlp->spans;
}

sub history_count
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM lifecycle.history WHERE user_id = $id");
}

# --- a whole life: invite, reminder (a timer), register, erase ------------
my $alice = $node->safe_psql(
	'postgres', q{
	SELECT lifecycle_invite('otel-alice-subj', 'otel.alice@example.org', policy => 'fast',
		attrs => '{"phone": "needle-otel-555", "name": "Alice Otel"}')});
my $alice_trace = $node->safe_psql('postgres',
	"SELECT replace(trace_id::text, '-', '') FROM lifecycle.users WHERE id = $alice");
like($alice_trace, qr/^[0-9a-f]{32}$/, 'the instance has a random trace id');

# The reminder is a timer: the scheduler fires it after the clock moves.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('25 hours')});
ok( wait_until(sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM lifecycle.history WHERE user_id = $alice AND event = 'invite_reminder'"
			) eq '1'
		}),
	'the scheduler fired the invite reminder');
$node->safe_psql('postgres', q{SELECT lifecycle_register('otel-alice-subj')});
$node->safe_psql('postgres', q{SELECT lifecycle_erase('otel-alice-subj')});

my $n = history_count($alice);
ok(wait_until(sub { scalar(grep { $_->{kind} == 1 } spans_of($alice)) >= $n }),
	"all $n history rows of the instance arrived as spans");
my @tspans = grep { $_->{kind} == 1 } spans_of($alice);
is(scalar(@tspans), $n, 'one span per history row, none twice');
is_deeply([ sort map { $_->{traceId} } @tspans ], [ ($alice_trace) x $n ],
	'every transition span is in the instance\'s trace');

my $rows = $node->safe_psql(
	'postgres', qq{
	SELECT h.id, h.event, coalesce(h.from_state::text, ''), h.to_state, h.actor,
		   (extract(epoch FROM coalesce(h.due_at, h.at)) * 1000000)::bigint,
		   (extract(epoch FROM h.at) * 1000000)::bigint,
		   u.policy, u.policy_version, u.tenant
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE h.user_id = $alice ORDER BY h.id});
my %span_by_id = map { $_->{spanId} => $_ } @tspans;
my %transition_span;    # history id -> span id
for my $line (split /\n/, $rows)
{
	my ($hid, $event, $from, $to, $actor, $start_us, $end_us, $policy, $pv,
		$tenant) = split /\|/, $line;
	my $sid = sprintf('%016x', $hid);
	$transition_span{$hid} = $sid;
	my $s = $span_by_id{$sid};
	ok($s, "history row $hid ($event) has its span") or next;
	my $a = LifecycleSinks::Otlp::attrs($s);
	is($s->{name}, "user $event", "span name is '{workflow} {event}' ($event)");
	is($s->{startTimeUnixNano}, "${start_us}000", "$event: starts at due_at (or at)");
	is($s->{endTimeUnixNano}, "${end_us}000", "$event: ends at at");
	ok(!defined $s->{parentSpanId}, "$event: a root span of short length");
	is_deeply(
		{ map { $_ => $a->{$_} } grep { /^lifecycle\./ } keys %$a },
		{
			'lifecycle.workflow' => 'user',
			'lifecycle.instance.id' => $alice,
			'lifecycle.tenant' => $tenant,
			'lifecycle.event' => $event,
			($from ne '' ? ('lifecycle.from_state' => $from) : ()),
			'lifecycle.to_state' => $to,
			'lifecycle.actor' => $actor,
			'lifecycle.policy' => $policy,
			'lifecycle.policy_version' => $pv,
		},
		"$event: the attributes of DESIGN, nothing else");
}
my ($reminder) = grep { $_->{name} eq 'user invite_reminder' } @tspans;
ok($reminder && $reminder->{startTimeUnixNano} lt $reminder->{endTimeUnixNano}
	  || $reminder->{startTimeUnixNano} eq $reminder->{endTimeUnixNano},
	'the timer span runs from due to fired');

# --- deliveries: CLIENT spans in the trace, linked, named by traceparent --
my @sent = split /\n/, $node->safe_psql('postgres',
	"SELECT id FROM lifecycle.outbox WHERE user_id = $alice AND status = 'sent' ORDER BY id");
ok(@sent >= 2, 'the instance\'s invite and reminder were delivered');
ok( wait_until(sub {
			my %have = map { LifecycleSinks::Otlp::attrs($_)->{'messaging.message.id'} => 1 }
			  grep { $_->{kind} == 3 } $otlp->spans;
			!grep { !$have{$_} } @sent;
		}),
	'every delivered message has a delivery span');
my @dspans = grep { $_->{kind} == 3 } $otlp->spans;
my %dspan = map { LifecycleSinks::Otlp::attrs($_)->{'messaging.message.id'} => $_ } @dspans;
my %hook_by_id = map { $_->{id} => $_ } grep { $_->{status} == 200 } $hooks->records;
for my $id (@sent)
{
	my $s = $dspan{$id};
	my $a = LifecycleSinks::Otlp::attrs($s);
	is($s->{name}, 'POST', "message $id: span named POST");
	is($s->{traceId}, $alice_trace, "message $id: in the instance's trace");
	is($a->{'http.request.method'}, 'POST', "message $id: http.request.method");
	is($a->{'http.response.status_code'}, '200', "message $id: status code");
	is($a->{'server.address'}, '127.0.0.1', "message $id: server.address");
	is($a->{'server.port'}, $hooks->{port}, "message $id: server.port");
	is($a->{'url.full'}, $hooks->{url}, "message $id: url.full without the query");
	ok(!defined $s->{status} || ($s->{status}{code} // 0) != 2, "message $id: not an error");
	my $link = $s->{links}[0];
	ok($link && $link->{traceId} eq $alice_trace
		  && grep({ $_ eq $link->{spanId} } values %transition_span),
		"message $id: linked to a transition span of the instance");
	my ($linked) = grep { $_->{spanId} eq ($link->{spanId} // '') } @tspans;
	ok($linked && $s->{startTimeUnixNano} ge $linked->{endTimeUnixNano},
		"message $id: on the lifecycle clock, after the transition that wrote it");
	my $tp = $hook_by_id{$id}{traceparent} // '';
	is($tp, "00-$alice_trace-$s->{spanId}-01",
		"message $id: the webhook's traceparent names its delivery span");
}
# The invite message was written by the invite.
my ($invite_msg) = @sent;
my $invite_hid = $node->safe_psql('postgres',
	"SELECT id FROM lifecycle.history WHERE user_id = $alice AND event = 'invite'");
is($dspan{$invite_msg}{links}[0]{spanId}, $transition_span{$invite_hid},
	'the invite message links to the invite span');

# The instance's trace as the receiver recorded it, for docs/trace.gp
# (docs/trace.png): one line per span, seconds from the first span's start.
{
	my @mine = sort { $a->{startTimeUnixNano} cmp $b->{startTimeUnixNano} }
	  grep { $_->{traceId} eq $alice_trace } $otlp->spans;
	my $t0 = substr($mine[0]{startTimeUnixNano}, 0, -3) / 1e6;
	open my $fh, '>', "$PostgreSQL::Test::Utils::tmp_check/trace.dat" or die $!;
	for my $sp (@mine)
	{
		my ($st, $en) = map { substr($_, 0, -3) / 1e6 - $t0 }
		  ($sp->{startTimeUnixNano}, $sp->{endTimeUnixNano});
		(my $name = $sp->{name}) =~ s/ /_/g;
		$name .= '_#' . LifecycleSinks::Otlp::attrs($sp)->{'messaging.message.id'}
		  if $sp->{kind} == 3;
		printf $fh "%s %.6f %.6f %d\n", $name, $st, $en, $sp->{kind};
	}
	close $fh;
}

# --- a scheduler batch is a "lifecycle tick" span ---------------------------
my @ticks = grep { $_->{name} eq 'lifecycle tick' } $otlp->spans;
ok(@ticks >= 1, 'scheduler batches have "lifecycle tick" spans');
ok((grep { (LifecycleSinks::Otlp::attrs($_)->{'lifecycle.tick.count'} // 0) >= 1 } @ticks),
	'a tick span counts its transitions');

# --- rollback: no span ----------------------------------------------------
$node->safe_psql(
	'postgres', q{
	BEGIN;
	SELECT lifecycle_invite('otel-rolled-back', 'rolled.back@example.org');
	ROLLBACK;
});
my $bob = $node->safe_psql('postgres',
	q{SELECT lifecycle_invite('otel-bob-subj', 'otel.bob@example.org', attrs => '{"x": "needle-bob-777"}')});
ok(wait_until(sub { scalar(grep { $_->{name} eq 'user invite' } spans_of($bob)) == 1 }),
	'a transition committed after a rolled-back one arrives (the gap is passed)');
my %ids = map { $_ => 1 } split /\n/,
  $node->safe_psql('postgres', 'SELECT id FROM lifecycle.users');
my @orphans = grep {
	my $i = LifecycleSinks::Otlp::attrs($_)->{'lifecycle.instance.id'};
	defined $i && !$ids{$i}
} $otlp->spans;
is(scalar(@orphans), 0, 'no span of the rolled-back transition');
my $spans_now = scalar(grep { $_->{kind} == 1 && $_->{name} ne 'lifecycle tick' } $otlp->spans);
my $rows_now = $node->safe_psql('postgres', 'SELECT count(*) FROM lifecycle.history');
is($spans_now, $rows_now, 'one transition span per committed history row, in all');

# --- the application's traceparent ----------------------------------------
my $app_trace = '4bf92f3577b34da6a3ce929d0e0e4736';
my $app_span = '00f067aa0ba902b7';
my $bob_trace = $node->safe_psql('postgres',
	"SELECT replace(trace_id::text, '-', '') FROM lifecycle.users WHERE id = $bob");
my ($rc, $out, $err) = $node->psql(
	'postgres', qq{
	SET ROLE app;
	BEGIN;
	SET LOCAL lifecycle.traceparent = '00-$app_trace-$app_span-01';
	SELECT lifecycle_register('otel-bob-subj');
	COMMIT;
	SELECT current_setting('lifecycle.traceparent') = '' AS reset_after_commit;
});
is($rc, 0, 'register with a traceparent works');
is($out, "active\nt", 'SET LOCAL: the traceparent ends with the transaction');
ok(wait_until(sub { scalar(grep { $_->{name} eq 'user register' } spans_of($bob)) == 1 }),
	'the register span arrived');
my ($reg) = grep { $_->{name} eq 'user register' } spans_of($bob);
is($reg->{traceId}, $app_trace, 'the call\'s span is in the application\'s trace');
is($reg->{parentSpanId}, $app_span, 'as a child of the application\'s span');
is($reg->{links}[0]{traceId}, $bob_trace, 'linked to the instance\'s trace');

# Malformed: a WARNING, never an error; the value is not echoed.
($rc, $out, $err) = $node->psql(
	'postgres', q{
	SET ROLE app;
	BEGIN;
	SET LOCAL lifecycle.traceparent = 'otel.bob@example.org-not-a-traceparent';
	SELECT lifecycle_complete('otel-bob-subj');
	COMMIT;
});
is($rc, 0, 'a malformed traceparent does not fail the transaction');
like($err, qr/WARNING:  lifecycle.traceparent ignored: not a W3C traceparent/,
	'a malformed traceparent is a WARNING');
unlike($err, qr/example\.org/, 'the WARNING does not echo the value');
($rc, $out, $err) = $node->psql('postgres',
	q{SET lifecycle.traceparent = '00-00000000000000000000000000000000-00f067aa0ba902b7-01'; SELECT 1});
like($err, qr/WARNING/, 'an all-zero trace id is malformed');
ok(wait_until(sub { scalar(grep { $_->{name} eq 'user complete' } spans_of($bob)) == 1 }),
	'the complete span arrived');
my ($cmp) = grep { $_->{name} eq 'user complete' } spans_of($bob);
is($cmp->{traceId}, $bob_trace, 'with a malformed traceparent: the instance\'s trace');
ok(!defined $cmp->{parentSpanId}, 'and no parent');

# --- resource, headers, settings -------------------------------------------
my @reqs = $otlp->requests;
ok(@reqs > 0, 'the collector received requests');
is_deeply([ sort keys %{ { map { $_->{path} => 1 } @reqs } } ], ['/v1/traces'],
	'every request is a POST to <endpoint>/v1/traces');
ok(!grep({ ($_->{headers}{'x-api-key'} // '') ne 'otel-key-31337' } @reqs),
	'lifecycle.otel_headers are sent with every request');
ok(!grep({ ($_->{headers}{'content-type'} // '') ne 'application/json' } @reqs),
	'OTLP/HTTP JSON');
my ($svc) = map { $_->{value}{stringValue} }
  grep { $_->{key} eq 'service.name' } @{ $reqs[0]{body}{resourceSpans}[0]{resource}{attributes} };
is($svc, 'lc-test', 'service.name is lifecycle.otel_service_name');
ok(!grep({ @{ $_->{body}{resourceSpans}[0]{scopeSpans}[0]{spans} } > 512 } @reqs),
	'at most 512 spans a request');

($rc, $out, $err) = $node->psql('postgres', 'SET ROLE app; SHOW lifecycle.otel_headers');
like($err, qr/permission denied|must be superuser/,
	'lifecycle.otel_headers is unreadable by a non-superuser');
is($node->safe_psql('postgres',
		q{SET ROLE app; SELECT count(*) FROM pg_settings WHERE name = 'lifecycle.otel_headers'}),
	'0', 'and hidden from pg_settings');
is($node->safe_psql('postgres', 'SHOW lifecycle.otel_headers'),
	'x-api-key=otel-key-31337,x-scope=ops', 'a superuser reads it');

# --- counters ----------------------------------------------------------------
ok( wait_until(sub {
			my $accepted = scalar($otlp->spans);
			$node->safe_psql('postgres',
				q{SELECT spans_exported_total FROM lifecycle.worker_stats WHERE worker = 'exporter'})
			  eq $accepted;
		}),
	'worker_stats counts the spans exported');
is( $node->safe_psql(
		'postgres', q{SELECT spans_dropped_total || ' ' || export_failed_requests_total
		  FROM lifecycle.worker_stats WHERE worker = 'exporter'}),
	'0 0', 'nothing dropped, no failed request');
is( $node->safe_psql(
		'postgres', q{SELECT m.value = s.spans_exported_total
		  FROM lifecycle.metrics m, lifecycle.worker_stats s
		 WHERE m.name = 'lifecycle_otel_spans_exported_total' AND s.worker = 'exporter'}),
	't', 'lifecycle.metrics has the same count');

# --- no personal data anywhere in what the collector received ----------------
my $raw = join("\n", map { $_->{raw} } $otlp->requests);
my @found = grep { index($raw, $_) >= 0 } @personal;
is_deeply(\@found, [], 'no subject, e-mail or attrs value in any span, attribute or resource');
unlike($raw, qr/q-secret/, 'no query string of a target');

# A malformed lifecycle.otel_headers: a WARNING that does not show it, and
# no header is sent (PostgreSQL would echo a refused value in its error).
$node->append_conf('postgresql.conf', "lifecycle.otel_headers = 'not a pair secret-zzz-42'");
$node->reload;
ok( wait_until(sub {
			$node->log_contains('lifecycle.otel_headers ignored: not a list of name=value pairs')
		}),
	'a malformed lifecycle.otel_headers is a WARNING');
# PostgreSQL itself logs a reloaded setting's new value ("parameter ...
# changed to ...", as for primary_conninfo); nothing of lifecycle's does.
my @leaks = grep { /secret-zzz-42/ && !/LOG:  parameter "lifecycle.otel_headers" changed to/ }
  split /\n/, slurp_file($node->logfile);
is_deeply(\@leaks, [], 'which does not show the value');
is($node->safe_psql('postgres', 'SHOW lifecycle.otel_headers'), '',
	'and the setting is empty: no header is sent');

$otlp->stop;
$hooks->stop;
$node->stop;
done_testing();
