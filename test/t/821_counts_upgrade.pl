# The counts kept as they change start exact after an upgrade (issue 20):
# 0.2.0, built from the repository's history, runs with its workers and
# gets users in every state, history, delivered and pending messages,
# holds and erasures; the current tree is installed over it and ALTER
# EXTENSION lifecycle UPDATE initialises lifecycle.counts from a full
# count.  Then every kept count equals a full count, the new
# lifecycle.retention_report and the count families of lifecycle.metrics
# equal their 0.2.0 definitions (test/model/counts.py), and still do after
# more calls, ticks and the worker's passes on the new version.
#
# Skipped where the clone has no history, or outside scripts/test.sh.
use strict;
use warnings FATAL => 'all';
use Cwd qw(abs_path);
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The last commit of 0.2.0 (sql/lifecycle--0.2.0--0.3.0.sql names it).
my $old_commit = 'b2f4a6e817d1a69904efeaa7d92503a08b12b890';
my $old_version = '0.2.0';

my $srcdir = abs_path("$FindBin::RealBin/../..");
my $git_dir = $ENV{LIFECYCLE_GIT_DIR} // '';
my $pg_config = $ENV{PG_CONFIG} // '';
my $python = '/usr/bin/python3';

plan skip_all => 'installs into the private PostgreSQL copy of scripts/test.sh'
  unless ($ENV{LIFECYCLE_PGROOT} // '') ne '' && $pg_config ne '';
plan skip_all => 'no repository history to build 0.2.0 from'
  unless $git_dir ne '' && -d $git_dir
  && IPC::Run::run([ 'git', "--git-dir=$git_dir", 'cat-file', '-e',
		"$old_commit^{commit}" ], '>', \my $o, '2>', \my $e);
plan skip_all => 'python3-psycopg2 is not installed'
  unless system($python, '-c', 'import psycopg2') == 0;

sub make_install
{
	my ($dir, $what) = @_;
	run_log([ 'make', '-C', $dir, '-s', "PG_CONFIG=$pg_config", 'install' ])
	  or die "make install of $what failed (see the log)";
	return;
}

my $old_installed = 0;
END
{
	if ($old_installed)
	{
		local $?;
		eval {
			make_install($srcdir, 'the current tree');
			my $sharedir = `"$pg_config" --sharedir`;
			chomp $sharedir;
			unlink "$sharedir/extension/lifecycle--$old_version.sql";
		};
	}
}

my $old_src = PostgreSQL::Test::Utils::tempdir('lifecycle-0.2.0');
run_log([ 'git', "--git-dir=$git_dir", 'archive', '--format=tar', $old_commit ],
	'|', [ 'tar', '-x', '-C', $old_src ])
  or die "git archive of $old_commit failed";
run_log([ 'make', '-C', $old_src, '-s', "PG_CONFIG=$pg_config" ])
  or die 'the 0.2.0 build failed (see the log)';
$old_installed = 1;
make_install($old_src, '0.2.0');

my $node = PostgreSQL::Test::Cluster->new('counts_upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = 200
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION lifecycle VERSION '$old_version'");
$node->safe_psql('postgres', q{
	SELECT lifecycle_add_channel('down', 'webhook', 'http://127.0.0.1:9/hook',
		'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
	SELECT lifecycle_define_policy('up', '{"invite_reminders": ["1 day"],
		"invite_expires_after": "3 days", "dormant_after": "5 days",
		"archive_after": "2 days", "archive_reminders": [], "erase_after": "3 days"}');
	SELECT lifecycle_define_policy('uph', '{"channel": "down", "dormant_after": "5 days"}');
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '@example.com',
		CASE WHEN i % 3 = 0 THEN 'ta' ELSE 'tb' END,
		CASE WHEN i % 4 = 0 THEN 'uph' ELSE 'up' END)) FROM generate_series(1, 60) i;
	SELECT count(lifecycle_register('u' || i, CASE WHEN i % 3 = 0 THEN 'ta' ELSE 'tb' END))
	  FROM generate_series(1, 40) i;
	SELECT lifecycle_hold('u2', 'tb', 'litigation');
	SELECT lifecycle_hold('u4', 'tb', 'audit', lifecycle_now() + interval '2 days');
	SELECT lifecycle_erase('u5', 'tb');
	SELECT count(*) FROM lifecycle_claim_messages(3);
});
$node->safe_psql('postgres', q{SELECT lifecycle_travel('4 days')});
$node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lifecycle.overdue')
  or die 'the 0.2.0 worker did not advance';
$node->safe_psql('postgres', q{SELECT lifecycle_travel('6 days')});
$node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lifecycle.overdue')
  or die 'the 0.2.0 worker did not advance';
cmp_ok($node->safe_psql('postgres',
		'SELECT count(DISTINCT state) FROM lifecycle.users'), '>=', 4,
	'0.2.0 users in several states');

# The new library, the update.
$node->stop;
make_install($srcdir, 'the current tree');
$node->start;
$node->safe_psql('postgres', 'ALTER EXTENSION lifecycle UPDATE');
isnt($node->safe_psql('postgres',
		q{SELECT extversion FROM pg_extension WHERE extname = 'lifecycle'}),
	$old_version, 'updated');

# The check of test/model/counts.py, then more steps of its sequence on
# the upgraded database (its policies and channel are its own).
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my ($stdout, $stderr);
my $ok = IPC::Run::run([ $python, "$srcdir/test/model/counts.py", '--dsn', $dsn,
		'--seed', '7', '--steps', '60', '--check-first' ],
	'>', \$stdout, '2>', \$stderr);
diag($stdout);
ok($ok, 'after the update, and at every step after it, kept counts equal full counts')
  or diag($stdout . $stderr);

$node->stop;
done_testing();
