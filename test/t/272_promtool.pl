# Copyright (c) lifecycle authors
#
# The metrics follow Prometheus conventions (issue 19): Debian's
# prometheus-postgres-exporter, run with
# contrib/prometheus-postgres-exporter/lifecycle-queries.yaml, publishes
# lifecycle's samples (the timer lateness histogram and the exporter's
# counters among them), and `promtool check metrics` (Debian's prometheus
# package) finds nothing to say about them: _total counters, _seconds
# units, a well-formed histogram, help text everywhere.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $exporter = '/usr/bin/prometheus-postgres-exporter';
my $promtool = '/usr/bin/promtool';
plan skip_all => "$exporter or $promtool is not installed (scripts/deps.sh installs them)"
  unless -x $exporter && -x $promtool;

my $queries = File::Spec->rel2abs(
	dirname(__FILE__) . '/../../contrib/prometheus-postgres-exporter/lifecycle-queries.yaml');

my $node = PostgreSQL::Test::Cluster->new('promtool');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = 500
});
$node->start;

# Timers that fired (reminders, by the worker): the histogram has counts.
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE prometheus LOGIN IN ROLE lifecycle_auditor, pg_monitor;
	SELECT count(lifecycle_invite('p' || i, 'p' || i || '@example.com', 'acme'))
	  FROM generate_series(1, 10) i;
	SELECT lifecycle_travel('4 days');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) >= 10 FROM lifecycle.history WHERE due_at IS NOT NULL})
  or die 'the reminders did not fire';
is($node->safe_psql('postgres', q{
	SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timer_lateness_seconds_count'}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.history WHERE due_at IS NOT NULL}),
	'the histogram counts every fired timer');
is($node->safe_psql('postgres', q{
	SELECT bool_and(b.value <= c.value)
	  FROM lifecycle.metrics b, lifecycle.metrics c
	 WHERE b.name = 'lifecycle_timer_lateness_seconds_bucket'
	   AND c.name = 'lifecycle_timer_lateness_seconds_count'}),
	't', 'no bucket counts more than the total');
is($node->safe_psql('postgres', q{
	SELECT value FROM lifecycle.metrics
	 WHERE name = 'lifecycle_timer_lateness_seconds_bucket' AND labels->>'le' = '+Inf'}),
	$node->safe_psql('postgres', q{
	SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timer_lateness_seconds_count'}),
	'the +Inf bucket is the count');

my $port;
for my $p (7560 .. 7599)
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
		Proto => 'tcp', ReuseAddr => 1, Listen => 1);
	if ($s) { close $s; $port = $p; last; }
}
ok(defined $port, "free port $port") or BAIL_OUT('no free port in 7560-7599');

local $ENV{DATA_SOURCE_NAME} = sprintf(
	'host=%s port=%d user=prometheus dbname=postgres sslmode=disable',
	$node->host, $node->port);
my $log = "$PostgreSQL::Test::Utils::tmp_check/promtool_exporter_$port.log";
my $h = IPC::Run::start(
	[ $exporter, "--extend.query-path=$queries",
	  "--web.listen-address=127.0.0.1:$port",
	  '--disable-default-metrics', '--disable-settings-metrics',
	  '--log.level=warn' ],
	'>', $log, '2>&1');

my $http = HTTP::Tiny->new(timeout => 10);
my $res;
for (1 .. 150)
{
	$res = $http->get("http://127.0.0.1:$port/metrics");
	last if $res->{success};
	usleep(200_000);
}
ok($res->{success}, 'exporter serves /metrics') or diag(slurp_file($log));
my $text = $res->{content} // '';
like($text, qr/^pg_exporter_last_scrape_error(\{[^}]*\})? 0$/m,
	'the exporter ran every query without error');

# The lifecycle families, as published.
my @lc = grep { /^(# (HELP|TYPE) )?lifecycle_/ } split /\n/, $text;
ok(scalar(@lc) > 0, 'lifecycle samples published');
like($text, qr/^# TYPE lifecycle_timer_lateness_seconds histogram$/m,
	'lifecycle_timer_lateness_seconds is a histogram');
like($text, qr/^lifecycle_timer_lateness_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} \d+$/m,
	'with its +Inf bucket');
like($text, qr/^lifecycle_timer_lateness_seconds_count(\{[^}]*\})? \d+$/m, 'and count');
like($text, qr/^# TYPE lifecycle_otel_spans_exported_total counter$/m,
	'exporter counters are counters');
like($text, qr/^# TYPE lifecycle_otel_spans_dropped_total counter$/m, 'spans dropped');
like($text, qr/^# TYPE lifecycle_otel_failed_requests_total counter$/m, 'failed requests');
my @counters = map { /^# TYPE (\S+) counter$/ ? $1 : () } @lc;
is_deeply([ grep { !/_total$/ } @counters ], [], 'every counter ends in _total');
# Label names only: a label's value may be the workflow "user" (0.3.0).
my %label_names = map { $_ => 1 } map { /([a-z_]+)="/g }
  map { /^[a-z_]+\{([^}]*)\}/ ? $1 : () } @lc;
is_deeply([ grep { /user|subject|email/ } sort keys %label_names ],
	[], 'no label names a user');
is_deeply([ grep { !/^(tenant|policy|state|workflow|event|channel|status|worker|le|server)$/ }
	  sort keys %label_names ],
	[], 'only the known labels');

# promtool: the whole page, and the lifecycle families alone.
my ($out, $err) = ('', '');
IPC::Run::run([ $promtool, 'check', 'metrics' ], '<', \$text, '>', \$out, '2>', \$err);
my $lint = "$out$err";
my @lc_problems = grep { /lifecycle_/ } split /\n/, $lint;
is_deeply(\@lc_problems, [], 'promtool check metrics: nothing about lifecycle metrics')
  or diag($lint);
my $lc_text = join("\n", @lc) . "\n";
my $ok = IPC::Run::run([ $promtool, 'check', 'metrics' ], '<', \$lc_text, '>', \$out, '2>', \$err);
ok($ok, 'promtool check metrics passes on the lifecycle families') or diag("$out$err");

$h->kill_kill;
done_testing();
