# lifecycle_graph() of a custom workflow's policy is Graphviz DOT that dot
# accepts: one node per state of that workflow (a state named like a DOT
# keyword included), its timers with the policy's values; the built-in
# dsar workflow's policy too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dot = '/usr/bin/dot';
plan skip_all => "$dot is not installed (scripts/deps.sh installs graphviz)"
  unless -x $dot;

my $node = PostgreSQL::Test::Cluster->new('graph_workflow');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	SELECT lifecycle_define_workflow('review', '{
	  "params": {"every": "3 mons", "notice": ["14 days"], "keep": "30 days"},
	  "messages": {"review_due": {}},
	  "states": {
	    "granted": {"timer": {"event": "review_lapse", "after": "every", "to": "node",
	                          "reminders": {"before": "notice", "event": "review_reminder",
	                                        "message": "review_due"}}},
	    "node": {"timer": {"event": "purge_due", "after": "keep", "from": "due", "to": "edge"}},
	    "edge": {"timer": {"event": "purge_more", "after": "1 day", "to": "erased"}}
	  },
	  "events": {"grant": [{"from": ["none", "node"], "to": "granted"}]}}');
	SELECT lifecycle_define_policy('review_fast', '{"workflow": "review", "every": "1 mon"}');
	SELECT lifecycle_define_policy('dsar_eu', '{"workflow": "dsar", "respond_within": "30 days"}');
});

sub plain
{
	my ($graph) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $dot, '-Tplain' ], '<', \$graph, '>', \$stdout,
		'2>', \$stderr);
	return ($ok && $stderr eq '', $stdout, $stderr);
}

my $graph = $node->safe_psql('postgres', q{SELECT lifecycle_graph('review_fast')});
my ($ok, $out, $err) = plain($graph);
ok($ok, 'dot reads the custom workflow\'s graph') or diag($err);
is(join(',', sort map { my $n = (split / /)[1]; $n =~ s/"//g; $n } grep { /^node / } split /\n/, $out),
	'edge,erased,granted,node', 'one node per state, keywords included');
like($graph, qr/granted -> "node" \[label="review_lapse after (?:\@ )?1 mon"\]/,
	'the timer with the policy\'s value');
like($graph, qr/"node" -> "edge" \[label="purge_due after (?:\@ )?30 days"\]/,
	'the keyword states are quoted in edges');

$graph = $node->safe_psql('postgres', q{SELECT lifecycle_graph('dsar_eu')});
($ok, $out, $err) = plain($graph);
ok($ok, 'dot reads the dsar policy\'s graph') or diag($err);
is(join(',', sort map { my $n = (split / /)[1]; $n =~ s/"//g; $n } grep { /^node / } split /\n/, $out),
	'answered,erased,extended,overdue,received,refused', 'dsar\'s states');
like($graph, qr/received -> overdue \[label="respond_due after (?:\@ )?30 days"\]/,
	'dsar\'s timer at the policy\'s value');
unlike($graph, qr/invited|dormant/, 'no state of the user workflow');

$node->stop;
done_testing();
