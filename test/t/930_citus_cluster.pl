# lifecycle on a real Citus cluster (issue 21, docs/CITUS.md): a
# coordinator and two workers on loopback, each preloading citus first
# and lifecycle second, the workers added with citus_add_node(), the
# extension created on every node, a distributed table answering through
# the coordinator, and lifecycle's own functions and workers running
# beside Citus on each node.
#
# Citus is built from its source by scripts/citus.sh (scripts/test.sh
# runs it; `make check-citus` runs this test alone).  Where it cannot be
# built or found the test skips, saying why.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pg_config = $ENV{PG_CONFIG} || 'pg_config';
chomp(my $libdir = `$pg_config --pkglibdir`);
if (!-f "$libdir/citus.so")
{
	my $why = $ENV{LIFECYCLE_CITUS_SKIP}
	  || 'scripts/citus.sh did not run (make check-citus builds it)';
	plan skip_all => "Citus is not installed in $libdir: $why";
}

# Three nodes on 127.0.0.1 (Citus connects over TCP); wal_level logical
# for shard moves.
my %node;
for my $name (qw(coordinator worker1 worker2))
{
	my $n = PostgreSQL::Test::Cluster->new($name);
	$n->init;
	$n->append_conf('postgresql.conf', qq{
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'citus,lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
wal_level = logical
max_worker_processes = 16
max_replication_slots = 10
max_wal_senders = 10
citus.shard_count = 8
citus.log_remote_commands = off
});
	$n->start;
	$node{$name} = $n;
}
my $coord = $node{coordinator};

# The order matters: Citus refuses to load after a library that set the
# planner or utility hooks.
is($coord->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'citus,lifecycle', 'citus first, then lifecycle');

# lifecycle sets the utility hook: loaded before Citus, Citus refuses to
# load and the server does not start.
my $wrong = PostgreSQL::Test::Cluster->new('wrong_order');
$wrong->init;
$wrong->append_conf('postgresql.conf', "shared_preload_libraries = 'lifecycle,citus'");
ok(!$wrong->start(fail_ok => 1), 'lifecycle before citus: the server does not start');
like(slurp_file($wrong->logfile), qr/Citus has to be loaded first/,
	'Citus says it has to be loaded first');

for my $name (sort keys %node)
{
	$node{$name}->safe_psql('postgres', 'CREATE EXTENSION citus');
}
$coord->safe_psql('postgres', sprintf(
		q{SELECT citus_set_coordinator_host('127.0.0.1', %d)}, $coord->port));
for my $name (qw(worker1 worker2))
{
	$coord->safe_psql('postgres', sprintf(
			q{SELECT 1 FROM citus_add_node('127.0.0.1', %d)}, $node{$name}->port));
}
is($coord->safe_psql('postgres',
		q{SELECT count(*) FROM citus_get_active_worker_nodes()}),
	'2', 'two active workers');

# CREATE EXTENSION on the coordinator: Citus propagates it to the
# workers, and refuses it on a worker.
my ($ret, $out, $err) = $node{worker1}->psql('postgres', 'CREATE EXTENSION lifecycle');
like($err, qr/operation is not allowed on this node/,
	'CREATE EXTENSION on a worker: Citus says to run it on the coordinator');
$coord->safe_psql('postgres', 'CREATE EXTENSION lifecycle');
for my $name (sort keys %node)
{
	is($node{$name}->safe_psql('postgres',
			q{SELECT extversion FROM pg_extension WHERE extname = 'lifecycle'}),
		'0.3.0', "lifecycle 0.3.0 on $name");
}

# The cluster answers: a table distributed over the workers, written and
# read through the coordinator.
$coord->safe_psql('postgres', q{
	CREATE TABLE probe (id int PRIMARY KEY, v text);
	SELECT create_distributed_table('probe', 'id');
	INSERT INTO probe SELECT i, 'v' || i FROM generate_series(1, 100) i;
});
is($coord->safe_psql('postgres', q{SELECT count(*), sum(id) FROM probe}),
	'100|5050', 'a distributed table through the coordinator');
is($coord->safe_psql('postgres', q{
	SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'probe'::regclass}),
	'2', 'its shards on both workers');

# lifecycle's own calls on the coordinator (its tables local there).
$coord->safe_psql('postgres', q{
	SELECT lifecycle_invite('c1', 'c1@example.com', 'acme');
	SELECT lifecycle_register('c1', 'acme');
});
is($coord->safe_psql('postgres', q{SELECT state FROM lifecycle_status('c1', 'acme')}),
	'active', 'invite and register on the coordinator');

# lifecycle's scheduler runs beside Citus' maintenance daemon on every node.
for my $name (sort keys %node)
{
	ok($node{$name}->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'lifecycle scheduler' AND datname = 'postgres'}),
		"the lifecycle scheduler runs on $name");
}

for my $name (sort keys %node)
{
	$node{$name}->stop;
}
done_testing();
