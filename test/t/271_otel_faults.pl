# Copyright (c) lifecycle authors
#
# A collector that misbehaves costs the product nothing (issue 19): 503
# then 200 with Retry-After delivers each span once, retried; 400 drops
# the batch and counts it; a partial success counts the rejected spans as
# dropped; a collector that hangs or is down leaves transitions and
# deliveries going on unchanged while spans are dropped and counted, and
# export resumes when it is back.  Target rules: a loopback collector is
# refused unless lifecycle.allow_private_targets.
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
my $node = lc_node('otelfaults',
	"lifecycle.otel_endpoint = '$otlp->{url}'",
	"lifecycle.http_timeout = 1000",
	"lifecycle.max_sleep = 500");
my $secret = lc_secret();
$node->safe_psql(
	'postgres', qq{
	SELECT lifecycle_add_channel('hooks', 'webhook', '$hooks->{url}', '$secret');
	SELECT lifecycle_define_policy('hooked', '{"channel": "hooks"}');
});

sub counters
{
	my ($e, $d, $f) = split /\|/, $node->safe_psql('postgres',
		q{SELECT spans_exported_total, spans_dropped_total, export_failed_requests_total
		    FROM lifecycle.worker_stats WHERE worker = 'exporter'});
	return { exported => $e, dropped => $d, failed => $f };
}

# Spans accepted by the collector for an instance's invite.
sub invite_spans
{
	my ($id) = @_;
	return grep {
		$_->{name} eq 'user invite'
		  && LifecycleSinks::Otlp::attrs($_)->{'lifecycle.instance.id'} eq $id
	} $otlp->spans;
}

# Requests that carried an instance's invite span, whatever the answer.
sub requests_with
{
	my ($id) = @_;
	return grep { $_->{raw} =~ /"lifecycle\.instance\.id","value":\{"intValue":"$id"\}/ }
	  $otlp->requests;
}

my $warm = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-warm', 'warm@example.com')});
ok(wait_until(sub { invite_spans($warm) == 1 }), 'export works');
my $c0 = counters();

# --- 503, 503, then 200: retried after Retry-After, delivered once ----------
$otlp->control(queue => [ 503, 503 ], retry_after => '1');
my $u1 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-one', 'one@example.com')});
ok(wait_until(sub { invite_spans($u1) == 1 }), 'the span arrived after two 503s');
my @tries = requests_with($u1);
is_deeply([ map { $_->{status} } @tries ], [ 503, 503, 200 ],
	'the same batch was sent three times: 503, 503, 200');
ok($tries[1]{at} - $tries[0]{at} >= 1 && $tries[2]{at} - $tries[1]{at} >= 1,
	'each retry waited for the Retry-After second');
is($tries[0]{raw}, $tries[2]{raw}, 'the retried request is the same batch');
my $c1 = counters();
is($c1->{failed} - $c0->{failed}, 2, 'two failed requests counted');
is($c1->{dropped}, $c0->{dropped}, 'nothing dropped');
is(scalar(invite_spans($u1)), 1, 'the span was accepted once');

# --- 429 and 502, 504 are retried too ----------------------------------------
$otlp->control(queue => [ 429, 502, 504 ], retry_after => '');
my $u2 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-two', 'two@example.com')});
ok(wait_until(sub { invite_spans($u2) == 1 }), 'the span arrived after 429, 502, 504');
is_deeply([ map { $_->{status} } requests_with($u2) ], [ 429, 502, 504, 200 ],
	'429, 502 and 504 are retried (with backoff, no Retry-After)');

# --- 400: dropped, counted, never sent again -----------------------------------
my $c2 = counters();
$otlp->control(mode => 'status', status => 400);
my $u3 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-three', 'three@example.com')});
ok(wait_until(sub { counters()->{dropped} > $c2->{dropped} }), '400: spans dropped and counted');
$otlp->control(mode => 'ok');
my $u4 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-four', 'four@example.com')});
ok(wait_until(sub { invite_spans($u4) == 1 }), 'export goes on after a 400');
is(scalar(requests_with($u3)), 1, 'the refused batch was sent once, not retried');
is(scalar(invite_spans($u3)), 0, 'and never accepted');
my $c3 = counters();
is($c3->{failed} - $c2->{failed}, 1, 'one failed request counted');
ok($node->log_contains('lifecycle exporter dropped \d+ spans: OTLP export failed: HTTP 400'),
	'the drop is logged');

# --- partial success: the rejected spans count as dropped ------------------------
$otlp->control(mode => 'partial', rejected => 1);
my $u5 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-five', 'five@example.com')});
ok(wait_until(sub { scalar(requests_with($u5)) >= 1 }), 'partial success answered');
ok(wait_until(sub { counters()->{dropped} == $c3->{dropped} + 1 }),
	'the rejected span is counted as dropped');
$otlp->control(mode => 'ok');

# --- a hanging collector: the product goes on, spans are dropped ---------------
my $c4 = counters();
$otlp->control(mode => 'hang');
my $before = $node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'});
$node->safe_psql('postgres',
	q{SELECT count(lifecycle_invite('h' || i, 'h' || i || '@example.com', policy => 'hooked'))
	    FROM generate_series(1, 40) i});
ok( wait_until(sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'}) == $before + 40
		}),
	'while the collector hangs, every delivery is made');
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.users WHERE subject LIKE 'h%'}),
	'40', 'and every transition');
ok(wait_until(sub { counters()->{dropped} >= $c4->{dropped} + 40 }, 180),
	'the spans of the hang are dropped and counted');
my $c5 = counters();
ok($c5->{failed} >= $c4->{failed} + 5, 'each attempt is a failed request');
is($node->safe_psql('postgres',
		q{SELECT value > 0 FROM lifecycle.metrics WHERE name = 'lifecycle_otel_spans_dropped_total'}),
	't', 'lifecycle.metrics counts the dropped spans');

# --- a collector that is down: the same, then export resumes --------------------
$otlp->stop;
$node->safe_psql('postgres',
	q{SELECT count(lifecycle_invite('d' || i, 'd' || i || '@example.com', policy => 'hooked'))
	    FROM generate_series(1, 20) i});
ok( wait_until(sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'}) == $before + 60
		}),
	'while the collector is down, every delivery is made');
ok(wait_until(sub { counters()->{dropped} >= $c5->{dropped} + 20 }, 180),
	'the spans of the outage are dropped and counted');
$otlp->restart;
$otlp->control(mode => 'ok');
my $u6 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-six', 'six@example.com')});
ok(wait_until(sub { invite_spans($u6) == 1 }), 'export resumes when the collector is back');
is($node->safe_psql('postgres',
		q{SELECT history_id >= (SELECT max(id) FROM lifecycle.history) - 100000 FROM lifecycle.otel_cursor}),
	't', 'the exporter never lags more than its bound behind history');

# --- target rules: a loopback collector is refused unless allowed ----------------
$node->append_conf('postgresql.conf', 'lifecycle.allow_private_targets = off');
$node->reload;
my $c6 = counters();
my $u7 = $node->safe_psql('postgres', q{SELECT lifecycle_invite('f-seven', 'seven@example.com')});
ok(wait_until(sub { counters()->{dropped} > $c6->{dropped} }),
	'a loopback collector is refused when private targets are not allowed');
is(scalar(requests_with($u7)), 0, 'nothing reached it');
ok($node->log_contains('OTLP export failed: destination 127.0.0.1 refused: loopback address'),
	'the refusal is logged');

$otlp->stop;
$hooks->stop;
$node->stop;
done_testing();
