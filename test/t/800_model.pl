# The model-based test (test/model/model.py): an independent model of
# the transition table (README.md, "The lifecycle"), driven with the
# extension by a seeded random sequence of calls, ticks and worker
# outages, compared after every step.  Fixed seed here; `make check-model SEED=random STEPS=N` for more.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = '/usr/bin/python3';
plan skip_all => 'python3-psycopg2 is not installed (scripts/deps.sh installs it)'
  unless system($python, '-c', 'import psycopg2') == 0;

my $seed = $ENV{MODEL_SEED} || '1';
my $steps = $ENV{MODEL_STEPS} || '400';

my $node = PostgreSQL::Test::Cluster->new('model');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
lifecycle.allow_time_travel = on
});
$node->start;

# MODEL_RUNS=N runs N sequences, each in a database of its own.
my $runs = $ENV{MODEL_RUNS} || 1;
for my $run (1 .. $runs)
{
	my $db = "model$run";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION lifecycle');
	my $dsn = 'host=' . $node->host . ' port=' . $node->port . " dbname=$db";
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $python, 'test/model/model.py', '--dsn', $dsn,
			'--seed', $seed, '--steps', $steps ],
		'>', \$stdout, '2>', \$stderr);
	diag($stdout);
	ok($ok, "model and extension agree at every step (seed $seed, $steps steps)")
	  or diag($stdout . $stderr);
}

$node->stop;
done_testing();
