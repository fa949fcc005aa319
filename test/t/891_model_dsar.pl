# The model-based test of workflows other than the user lifecycle
# (test/model/model_workflows.py): an independent model of the built-in
# dsar workflow and of a custom workflow, written from the design (README.md
# "Workflows" and "Data subject requests"), driven with the extension by a
# seeded random sequence of starts, signals, ticks and worker outages,
# compared after every step.  Fixed seeds here; MODEL_SEED=random
# MODEL_STEPS=N MODEL_RUNS=N for more (test/t/800_model.pl is the user
# lifecycle's).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = '/usr/bin/python3';
plan skip_all => 'python3-psycopg2 is not installed (scripts/deps.sh installs it)'
  unless system($python, '-c', 'import psycopg2') == 0;

my @seeds = $ENV{MODEL_SEED} ? ($ENV{MODEL_SEED}) : ('1', '2');
my $steps = $ENV{MODEL_STEPS} || '300';
my $runs = $ENV{MODEL_RUNS} || 1;

my $node = PostgreSQL::Test::Cluster->new('model_workflows');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
lifecycle.allow_time_travel = on
});
$node->start;

# Each sequence in a database of its own.
my $n = 0;
for my $seed (@seeds)
{
	for my $run (1 .. $runs)
	{
		my $db = 'wmodel' . ++$n;
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		$node->safe_psql($db, 'CREATE EXTENSION lifecycle');
		my $dsn = 'host=' . $node->host . ' port=' . $node->port . " dbname=$db";
		my ($stdout, $stderr);
		my $ok = IPC::Run::run([ $python, 'test/model/model_workflows.py', '--dsn', $dsn,
				'--seed', $seed, '--steps', $steps ],
			'>', \$stdout, '2>', \$stderr);
		diag($stdout);
		ok($ok, "model and extension agree at every step (seed $seed, $steps steps)")
		  or diag($stdout . $stderr);
	}
}

$node->stop;
done_testing();
