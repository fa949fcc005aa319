# Debian's prometheus-postgres-exporter, run with
# contrib/prometheus-postgres-exporter/lifecycle-queries.yaml against a test
# cluster as a role that holds only lifecycle_auditor (and pg_monitor),
# publishes exactly the samples of lifecycle.metrics, with their values.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $exporter = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => "$exporter is not installed (scripts/deps.sh installs it)"
  unless -x $exporter;

my $queries = File::Spec->rel2abs(
	dirname(__FILE__) . '/../../contrib/prometheus-postgres-exporter/lifecycle-queries.yaml');
ok(-f $queries, 'queries file exists');

my $node = PostgreSQL::Test::Cluster->new('exporter');
$node->init;
# The worker runs (so it is "up") but advances nothing: the data stays
# still between a scrape and the view.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.enabled = off
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE prometheus LOGIN IN ROLE lifecycle_auditor, pg_monitor;
	SELECT count(lifecycle_invite('e' || i, 'e' || i || '@example.com', 'acme'))
	  FROM generate_series(1, 20) i;
	SELECT count(lifecycle_invite('f' || i, 'f' || i || '@example.com', 'globex'))
	  FROM generate_series(1, 5) i;
	SELECT count(lifecycle_register('e' || i, 'acme')) FROM generate_series(1, 12) i;
	SELECT count(lifecycle_complete('e' || i, 'acme')) FROM generate_series(1, 3) i;
	SELECT lifecycle_hold('e4', 'acme', 'litigation');
	SELECT lifecycle_erase('e20', 'acme');
	-- invite reminders of 12 invited users fall due; nothing fires them.
	SELECT lifecycle_travel('4 days');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'})
  or die 'scheduler did not start';
is($node->safe_psql('postgres', 'SELECT count(*) FROM lifecycle.overdue'),
	'12', '12 invite reminders overdue');

# A free loopback port from the observability range 7500-7599.
my $port;
for my $p (7510 .. 7599)
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
		Proto => 'tcp', ReuseAddr => 1, Listen => 1);
	if ($s) { close $s; $port = $p; last; }
}
ok(defined $port, "free port $port") or BAIL_OUT('no free port in 7510-7599');

my $dsn = sprintf('host=%s port=%d user=prometheus dbname=postgres sslmode=disable',
	$node->host, $node->port);
my $log = "$PostgreSQL::Test::Utils::tmp_check/exporter_$port.log";
local $ENV{DATA_SOURCE_NAME} = $dsn;
my $h = IPC::Run::start(
	[ $exporter, "--extend.query-path=$queries",
	  "--web.listen-address=127.0.0.1:$port",
	  '--disable-default-metrics', '--disable-settings-metrics',
	  '--log.level=warn' ],
	'>', $log, '2>&1');

my $http = HTTP::Tiny->new(timeout => 10);
my $url = "http://127.0.0.1:$port/metrics";

# Wait (bounded) until the exporter answers.
my $res;
for (1 .. 150)
{
	$res = $http->get($url);
	last if $res->{success};
	usleep(200_000);
}
ok($res->{success}, 'exporter serves /metrics')
  or diag(slurp_file($log));

# Parse the lifecycle samples: name{labels} value.  The exporter adds a
# "server" label; it is not part of the view's labels.
sub scrape
{
	my $r = $http->get($url);
	die "scrape failed: $r->{status}" unless $r->{success};
	my (%s, $errors);
	for my $line (split /\n/, $r->{content})
	{
		$errors = $1 if $line =~ /^pg_exporter_last_scrape_error(?:\{[^}]*\})? (\S+)$/;
		next unless $line =~ /^(lifecycle_[a-z_]+)(?:\{([^}]*)\})? (\S+)$/;
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l = $labels =~ /([a-z_]+)="((?:[^"\\]|\\.)*)"/g;
		delete $l{server};
		my $key = $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
		$s{$key} = $value + 0;
	}
	return (\%s, $errors);
}

sub view
{
	my ($where) = @_;
	my %s;
	my $rows = $node->safe_psql('postgres',
		"SELECT name, labels::text, value FROM lifecycle.metrics $where",
		extra_params => [ '-U', 'prometheus' ]);
	for my $row (split /\n/, $rows)
	{
		my ($name, $labels, $value) = split /\|/, $row;
		my $l = decode_json($labels);
		my $key = $name . '{' . join(',', map { "$_=$l->{$_}" } sort keys %$l) . '}';
		$s{$key} = $value + 0;
	}
	return \%s;
}

# The lag grows with the clock: bound the scrape's value by the view's
# before and after.
my $lag_key = 'lifecycle_timers_lag_seconds{}';
my $before = view('');
my ($scraped, $scrape_errors) = scrape();
my $after = view('');
is($scrape_errors, '0', 'the exporter ran every query without error');

ok($before->{$lag_key} > 0, 'timers lag');
ok($before->{$lag_key} <= $scraped->{$lag_key}
	  && $scraped->{$lag_key} <= $after->{$lag_key},
	'scraped lag lies between the view before and after')
  or diag("$before->{$lag_key} $scraped->{$lag_key} $after->{$lag_key}");
delete $_->{$lag_key} for ($before, $scraped, $after);

is_deeply($scraped, $after, 'every lifecycle sample and value matches lifecycle.metrics');
is_deeply([ sort keys %$scraped ], [ sort keys %$before ], 'same samples as before the scrape');

# Spot checks of what the numbers mean (0.3.0: the state families name
# the workflow).
is($scraped->{'lifecycle_state_users{policy=default,state=active,tenant=acme,workflow=user}'}, 9,
	'9 active in acme');
is($scraped->{'lifecycle_state_users{policy=default,state=completed,tenant=acme,workflow=user}'}, 3,
	'3 completed in acme');
is($scraped->{'lifecycle_state_held{policy=default,state=active,tenant=acme,workflow=user}'}, 1,
	'1 active user held in acme');
is($scraped->{'lifecycle_state_users{policy=default,state=invited,tenant=acme,workflow=user}'}, 7,
	'7 invited in acme');
is($scraped->{'lifecycle_state_users{policy=default,state=erased,tenant=acme,workflow=user}'}, 1,
	'1 erased in acme');
is($scraped->{'lifecycle_state_users{policy=default,state=invited,tenant=globex,workflow=user}'}, 5,
	'5 invited in globex');
is($scraped->{'lifecycle_transitions_total{event=invite,workflow=user}'}, 25, '25 invites');
is($scraped->{'lifecycle_transitions_total{event=register,workflow=user}'}, 12, '12 registrations');
is($scraped->{'lifecycle_timers_overdue{}'}, 12, '12 overdue');
is($scraped->{'lifecycle_timers_violations{}'}, 0, 'no violations');
is($scraped->{'lifecycle_outbox_messages{channel=,status=unrouted}'}, 27,
	'27 unrouted: 24 invites (one cancelled by the erasure), 3 archive notices');
is($scraped->{'lifecycle_worker_up{worker=scheduler}'}, 1, 'scheduler up');
is($scraped->{'lifecycle_worker_pid{worker=scheduler}'},
	$node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'}),
	'scheduler pid is that of pg_stat_activity');

# Live families follow the data at the next scrape (state and transitions
# are cached for cache_seconds).
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_invite('g' || i, 'g' || i || '@example.com', 'acme'))
	  FROM generate_series(1, 7) i});
($scraped) = scrape();
is($scraped->{'lifecycle_outbox_messages{channel=,status=unrouted}'}, 34,
	'7 more unrouted messages at the next scrape');

# With the worker on, the overdue reminders fire; the next scrape shows the
# worker's counters and an empty backlog.
$node->append_conf('postgresql.conf', 'lifecycle.enabled = on');
$node->reload;
$node->poll_query_until('postgres', q{
	SELECT (SELECT count(*) = 0 FROM lifecycle.overdue)
	   AND (SELECT transitions_total >= 12 FROM lifecycle.worker_stats
			 WHERE worker = 'scheduler')})
  or die 'the worker did not catch up';
($scraped) = scrape();
my $now = view(q{WHERE name LIKE 'lifecycle\_worker\_%' OR name LIKE 'lifecycle\_timers\_%'});
is($scraped->{'lifecycle_timers_overdue{}'}, 0, 'nothing overdue after catch-up');
is($scraped->{'lifecycle_timers_lag_seconds{}'}, 0, 'no lag after catch-up');
ok($scraped->{'lifecycle_worker_transitions_total{worker=scheduler}'} >= 12,
	'the scheduler counted its transitions');
is($scraped->{"lifecycle_worker_$_\{worker=scheduler}"},
	$now->{"lifecycle_worker_$_\{worker=scheduler}"},
	"scheduler $_ matches the view")
  for qw(transitions_total batches_total errors_total up);

$h->signal('TERM');
eval { $h->finish };
ok(!$http->get($url)->{success}, 'exporter port closed');

$node->stop;
done_testing();
