# The log scan (issue 10): run the whole pg_regress suite (test/sql, in
# order: refusals, bad input, failing hooks, erasure, tenants, red team)
# and then the worker through failing hooks and erasures, against one
# cluster; then search the server log for every subject and e-mail address
# used, and find none.
#
# The subjects and addresses are collected as they are used: a trigger on
# lifecycle.users (test instrumentation, added by this test) records every
# subject and e-mail address written, and every e-mail-like literal of the
# SQL files is added (addresses that were refused never reach the table).
# Lines in which PostgreSQL quotes the caller's own SQL (STATEMENT:, and
# CONTEXT: lines, which quote the test's PL/pgSQL and EXECUTE strings) are
# PostgreSQL's echo of what the caller wrote, not the extension's output:
# they are not scanned (log_min_error_statement = panic turns the first
# off, as an application passing personal data as literals should).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('log_scan');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'contrib_regression'
lifecycle.allow_time_travel = on
lifecycle.allow_private_targets = on
lifecycle.enabled = off
lifecycle.max_sleep = '1s'
log_statement = none
log_min_messages = debug1
log_min_error_statement = panic
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE contrib_regression');

# Every subject and address written, whoever writes it, survives erasure
# (the erasure clears the row, not this side table).
my $instrument = q{
	CREATE SCHEMA IF NOT EXISTS logscan;
	CREATE TABLE IF NOT EXISTS logscan.seen (v text PRIMARY KEY);
	CREATE OR REPLACE FUNCTION logscan.record() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
	BEGIN
		INSERT INTO logscan.seen SELECT x FROM unnest(ARRAY[NEW.subject, NEW.email]) x
		 WHERE x IS NOT NULL ON CONFLICT DO NOTHING;
		RETURN NEW;
	END $$;
	GRANT USAGE ON SCHEMA logscan TO PUBLIC;
	DROP TRIGGER IF EXISTS logscan ON lifecycle.users;
	CREATE TRIGGER logscan AFTER INSERT OR UPDATE ON lifecycle.users
		FOR EACH ROW EXECUTE FUNCTION logscan.record();
};

my $offset = -s $node->logfile;
my @files = sort glob('test/sql/*.sql');
ok(@files > 20, scalar(@files) . ' regression files');
my %literal;
for my $file (@files)
{
	my ($stdout, $stderr);
	$node->psql('contrib_regression', slurp_file($file),
		stdout => \$stdout, stderr => \$stderr, on_error_stop => 0);
	# After the install (00_install) and again after every file (some drop
	# and create the extension), the instrumentation is in place.
	$node->psql('contrib_regression', $instrument)
	  if $node->safe_psql('contrib_regression',
		q{SELECT count(*) FROM pg_extension WHERE extname = 'lifecycle'}) eq '1';
	my $sql = slurp_file($file);
	$literal{$1} = 1 while $sql =~ /([A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)/g;
}

# The worker too: failing hooks (text with the subject), erasure, retries.
$node->safe_psql('contrib_regression', $instrument);
$node->safe_psql('contrib_regression', q{
	CREATE FUNCTION public.logscan_fail(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'refusing % (%)', subject, subject || '@hook.example';
	END $$;
	SELECT lifecycle_define_policy('logscan', '{"archive_after": "1 day",
		"archive_reminders": [], "erase_after": "1 day",
		"hooks": {"archive": "public.logscan_fail"}}');
	SELECT count(lifecycle_invite('logscan-worker-' || i, 'logscan-worker-' || i || '@scan.example',
		'logscan', 'logscan', 'eu', '{"name": "Wanda Scanner"}'))
	  FROM generate_series(1, 6) i;
	SELECT count(lifecycle_register('logscan-worker-' || i, 'logscan')) FROM generate_series(1, 6) i;
	SELECT count(lifecycle_complete('logscan-worker-' || i, 'logscan')) FROM generate_series(1, 6) i;
	SELECT lifecycle_erase('logscan-worker-6', 'logscan', 'request');
});
$node->append_conf('postgresql.conf', 'lifecycle.enabled = on');
$node->reload;
$node->safe_psql('contrib_regression', q{SELECT lifecycle_travel('2 days')});
$node->poll_query_until('contrib_regression', q{
	SELECT count(*) = 5 FROM lifecycle.overdue WHERE tenant = 'logscan' AND retries > 0})
  or die 'the worker did not try the failing hooks';
$node->safe_psql('contrib_regression', q{
	SELECT count(lifecycle_erase(subject, 'logscan')) FROM lifecycle.users
	 WHERE tenant = 'logscan' AND state <> 'erased'});
my @values = split /\n/,
  $node->safe_psql('contrib_regression', q{SELECT v FROM logscan.seen ORDER BY v});
$node->stop;
push @values, keys %literal;
my %seen = map { $_ => 1 } @values;
@values = sort keys %seen;
ok(@values > 200, scalar(@values) . ' subjects and addresses used');
ok((grep { $_ eq 'logscan-worker-3' } @values), 'the worker scenario is among them');

# The log, without PostgreSQL's quotes of the caller's SQL.
my @lines = split /\n/, slurp_file($node->logfile, $offset);
my @scanned;
my $skip = 0;
for my $line (@lines)
{
	if ($line =~ /^\S.*?\b(STATEMENT|CONTEXT):  /) { $skip = 1; next; }
	if ($line =~ /^\t/ && $skip) { next; }
	$skip = 0;
	push @scanned, $line;
}
my $log = join("\n", @scanned);
ok(length($log) > 10000, 'a substantial log (' . scalar(@scanned) . ' lines)');
like($log, qr/archive hook of policy|subject does not exist|invalid e-mail address/,
	'the log has the extension\'s refusals');

# Short values ("a1") and plain words ("future", "day") occur in unrelated
# text: those are searched quoted or bracketed, as a message would show
# them; every other value (most of them: "logscan-worker-3", "pii-erin",
# every address) anywhere, quoted or not.
my @leaks;
for my $v (@values)
{
	my $q = quotemeta($v);
	my $pat = (length($v) >= 5 && $v !~ /^[a-z]+$/) ? $q
	  : "\"$q\"|'$q'|\\($q\\)|<$q>";
	push @leaks, $v if $log =~ /$pat/m;
}
is(join(', ', @leaks), '', 'no subject or e-mail address in the server log');
for my $v (@leaks[0 .. ($#leaks < 4 ? $#leaks : 4)])
{
	my ($line) = grep { index($_, $v) >= 0 } @scanned;
	diag("leak of $v: $line");
}
done_testing();
