# lifecycle_graph() returns Graphviz DOT that Debian's dot renders to PNG,
# with a node per state carrying the live count and edges labelled with
# the policy's timers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dot = '/usr/bin/dot';
plan skip_all => "$dot is not installed (scripts/deps.sh installs graphviz)"
  unless -x $dot;

my $node = PostgreSQL::Test::Cluster->new('graph');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE graph_auditor LOGIN IN ROLE lifecycle_auditor;
	SELECT lifecycle_define_policy('short', '{"dormant_after": "10 days", "archive_after": "5 days", "archive_reminders": ["2 days"]}');
	SELECT count(lifecycle_invite('s' || i, 's' || i || '@example.com', 'acme', 'short'))
	  FROM generate_series(1, 4) i;
	SELECT lifecycle_register('s1', 'acme'), lifecycle_register('s2', 'acme');
	SELECT lifecycle_complete('s2', 'acme');
	SELECT count(lifecycle_invite('d' || i, 'd' || i || '@example.com'))
	  FROM generate_series(1, 3) i;
});

my $graph = $node->safe_psql('postgres', q{SELECT lifecycle_graph('short')},
	extra_params => [ '-U', 'graph_auditor' ]);
like($graph, qr/^digraph\b/, 'a digraph');
like($graph, qr/invited \[label="invited\\n2"\]/, 'invited node counts 2 of this policy');
like($graph, qr/active \[label="active\\n1"\]/, 'active node counts 1');
like($graph, qr/completed \[label="completed\\n1"\]/, 'completed node counts 1');
like($graph, qr/erased \[label="erased\\n0"\]/, 'states without users show 0');
like($graph, qr/active -> dormant \[label="[^"]*10 days/, 'dormancy edge shows the policy timer');
like($graph, qr/dormant -> archived \[label="[^"]*5 days/, 'archive edge shows the policy timer');

my $dir = PostgreSQL::Test::Utils::tempdir;
my ($stdout, $stderr);
my $ok = IPC::Run::run([ $dot, '-Tpng', '-o', "$dir/graph.png" ],
	'<', \$graph, '>', \$stdout, '2>', \$stderr);
ok($ok, 'dot renders it') or diag($stderr);
is($stderr, '', 'without warnings');
open(my $fh, '<:raw', "$dir/graph.png") or die $!;
read($fh, my $magic, 8);
close $fh;
is($magic, "\x89PNG\r\n\x1a\n", 'a PNG');

# The default policy's graph counts its own users only.
my $default = $node->safe_psql('postgres', q{SELECT lifecycle_graph()});
like($default, qr/invited \[label="invited\\n3"\]/, 'default policy: 3 invited');
$ok = IPC::Run::run([ $dot, '-Tsvg' ], '<', \$default, '>', \$stdout, '2>', \$stderr);
ok($ok && $stderr eq '', 'default graph renders too') or diag($stderr);

# A tenant-scoped auditor counts only its tenants' users.
$node->safe_psql('postgres', q{
	CREATE ROLE graph_scoped LOGIN IN ROLE lifecycle_auditor;
	INSERT INTO lifecycle.tenant_grants VALUES ('graph_scoped', 'acme');
});
my $scoped = $node->safe_psql('postgres', q{SELECT lifecycle_graph('short')},
	extra_params => [ '-U', 'graph_scoped' ]);
like($scoped, qr/invited \[label="invited\\n2"\]/, 'scoped auditor: acme users counted');
$scoped = $node->safe_psql('postgres', q{SELECT lifecycle_graph()},
	extra_params => [ '-U', 'graph_scoped' ]);
like($scoped, qr/invited \[label="invited\\n0"\]/, 'scoped auditor: other tenants not counted');

# A policy name is data, not DOT: quotes and backslashes cannot add nodes.
$node->safe_psql('postgres', q{SELECT lifecycle_define_policy(E'we"ird\\name"; x [label="y', '{}')});
my $weird = $node->safe_psql('postgres', q{SELECT lifecycle_graph(E'we"ird\\name"; x [label="y')});
$ok = IPC::Run::run([ $dot, '-Tplain' ], '<', \$weird, '>', \$stdout, '2>', \$stderr);
ok($ok && $stderr eq '', 'odd policy name renders') or diag($stderr);
is(scalar(() = $stdout =~ /^node /mg), 7, 'still exactly the 7 state nodes');

# Unknown and NULL policies.
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT lifecycle_graph('nope')});
like($err, qr/policy "nope" does not exist/, 'unknown policy: 42704 message');
($ret, $out, $err) = $node->psql('postgres', q{SELECT lifecycle_graph(NULL)});
like($err, qr/must not be null/, 'NULL policy refused');

$node->stop;
done_testing();
