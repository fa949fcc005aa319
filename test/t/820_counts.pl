# The counts kept as they change (issue 20; test/model/counts.py): a seeded
# random sequence of calls, ticks, worker passes, rollbacks (whole and to a
# savepoint), terminated and SIGKILLed backends (crash recovery), a
# terminated scheduler, holds, erasures, adoption, migrations, message
# claims and pruning; after every step each kept count equals a full
# count, and lifecycle.retention_report and the count families of
# lifecycle.metrics equal their 0.2.0 definitions, which read every row.
# Fixed seed here; COUNTS_SEED=random COUNTS_STEPS=N for more.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = '/usr/bin/python3';
plan skip_all => 'python3-psycopg2 is not installed (scripts/deps.sh installs it)'
  unless system($python, '-c', 'import psycopg2') == 0;

my $seed = $ENV{COUNTS_SEED} || '1';
my $steps = $ENV{COUNTS_STEPS} || '300';

my $node = PostgreSQL::Test::Cluster->new('counts');
$node->init;
# The worker runs (it advances and folds every pass, at least every
# 200 ms here); the sender's channel refuses every message.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.allow_private_targets = on
lifecycle.max_sleep = 200
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lifecycle');

my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my ($stdout, $stderr);
my $ok = IPC::Run::run([ $python, 'test/model/counts.py', '--dsn', $dsn,
		'--seed', $seed, '--steps', $steps ],
	'>', \$stdout, '2>', \$stderr);
diag($stdout);
ok($ok, "kept counts equal full counts at every step (seed $seed, $steps steps)")
  or diag($stdout . $stderr);

$node->stop;
done_testing();
