# Copyright (c) lifecycle authors
#
# The upgrade path from 0.1.0, as a user takes it: install the new
# package, restart, ALTER EXTENSION lifecycle UPDATE.
#
# 0.1.0 is built from the repository's own history (its last commit, by
# hash, through git archive) and installed into scripts/test.sh's private
# copy of PostgreSQL; a cluster preloading it is filled through its API
# while its workers run.  Then the current tree is installed over it and
# the cluster restarted: until the update, the workers idle with one LOG
# line naming ALTER EXTENSION lifecycle UPDATE, and API calls either work
# or fail with 55000 naming the update.  After the update: the data is
# intact, the overdue users advance and keep advancing, the schema dump
# (pg_dump --schema-only --binary-upgrade, which is what lists the
# extension's members) equals a fresh install's, the extension's config
# tables and their filters are the same, and the whole pg_regress suite
# passes on a database upgraded from 0.1.0.
#
# Skipped where the clone has no history (an export without .git, a
# shallow clone) or outside scripts/test.sh (no private PostgreSQL copy:
# the test replaces the installed library).
use strict;
use warnings FATAL => 'all';
use Cwd qw(abs_path);
use File::Copy qw(copy);
use FindBin;
use lib "$FindBin::RealBin/../sinks";
use LifecycleSinks;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The last commit of 0.1.0.
my $old_commit = '220c1ab38be7a866411ebe06866c6dd1be674bb7';
my $old_version = '0.1.0';

my $srcdir = abs_path("$FindBin::RealBin/../..");
my $git_dir = $ENV{LIFECYCLE_GIT_DIR} // '';
my $pg_config = $ENV{PG_CONFIG} // '';

plan skip_all => 'the upgrade test installs into the private PostgreSQL copy '
  . 'of scripts/test.sh (LIFECYCLE_PGROOT and PG_CONFIG unset): run it from there'
  unless ($ENV{LIFECYCLE_PGROOT} // '') ne '' && $pg_config ne '';
plan skip_all => 'no repository history to build 0.1.0 from '
  . '(LIFECYCLE_GIT_DIR unset: the tree is not a git clone)'
  unless $git_dir ne '' && -d $git_dir;
plan skip_all => "the repository's history lacks the last 0.1.0 commit "
  . "$old_commit (a shallow clone?)"
  unless IPC::Run::run([ 'git', "--git-dir=$git_dir", 'cat-file', '-e',
		"$old_commit^{commit}" ], '>', \my $o, '2>', \my $e);

my ($new_version) = slurp_file("$srcdir/lifecycle.control")
  =~ /^default_version\s*=\s*'([^']+)'/m;
die "no default_version in lifecycle.control" unless defined $new_version;

# Install a source tree's build into the private PostgreSQL copy.
sub make_install
{
	my ($dir, $what) = @_;
	run_log([ 'make', '-C', $dir, '-s', "PG_CONFIG=$pg_config", 'install' ])
	  or die "make install of $what failed (see the log)";
	return;
}

# Put the current tree back as it was installed: its build, and no
# 0.1.0 install script left beside it.
sub reinstall_current
{
	make_install($srcdir, 'the current tree');
	my $sharedir = `"$pg_config" --sharedir`;
	chomp $sharedir;
	unlink "$sharedir/extension/lifecycle--$old_version.sql";
	return;
}

# Whatever happens below, later tests get the current tree back.
my $old_installed = 0;
END
{
	if ($old_installed)
	{
		local $?;
		eval { reinstall_current() };
	}
}

# --- build and install 0.1.0 -------------------------------------------
my $old_src = PostgreSQL::Test::Utils::tempdir('lifecycle-0.1.0');
run_log([ 'git', "--git-dir=$git_dir", 'archive', '--format=tar', $old_commit ],
	'|', [ 'tar', '-x', '-C', $old_src ])
  or die "git archive of $old_commit failed";
ok(-f "$old_src/Makefile", "0.1.0 ($old_commit) exported from the history");
run_log([ 'make', '-C', $old_src, '-s', "PG_CONFIG=$pg_config" ])
  or die 'the 0.1.0 build failed (see the log)';
$old_installed = 1;
make_install($old_src, '0.1.0');

# --- a cluster running 0.1.0 with its workers ----------------------------
my $sink = start_webhook_sink(secret => lc_secret());
my $secret = lc_secret();
my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
# max_sleep is an hour: every wake-up below comes from a commit, a SIGHUP
# or a restart.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'app'
lifecycle.allow_time_travel = on
lifecycle.allow_private_targets = on
lifecycle.max_sleep = '1h'
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
# pg_regress's database, upgraded empty like a fresh install would be.
$node->safe_psql('postgres', 'CREATE DATABASE contrib_regression');

# The application side of the hooks, the same in every database compared.
my $app_sql = q{
	CREATE SCHEMA app;
	CREATE TABLE app.accounts (subject text PRIMARY KEY, status text NOT NULL DEFAULT 'live');
	CREATE FUNCTION app.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ UPDATE app.accounts a SET status = 'archived' WHERE a.subject = $1 $$;
	CREATE FUNCTION app.on_erase(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ DELETE FROM app.accounts a WHERE a.subject = $1 $$;
};

for my $db (qw(app contrib_regression))
{
	$node->safe_psql($db, "CREATE EXTENSION lifecycle VERSION '$old_version'");
}
is($node->safe_psql('app',
		q{SELECT extversion FROM pg_extension WHERE extname = 'lifecycle'}),
	$old_version, '0.1.0 is installed');

$node->safe_psql('app', $app_sql . qq{
	INSERT INTO app.accounts SELECT 'u' || i FROM generate_series(1, 30) i;
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('p', '{
		"channel": "hooks",
		"invite_reminders": ["1 day"], "invite_expires_after": "3 days",
		"dormant_after": "10 days", "archive_after": "5 days",
		"archive_reminders": ["2 days"], "erase_after": "30 days",
		"hooks": {"archive": "app.on_archive", "erase": "app.on_erase"}}');
	INSERT INTO lifecycle.tenant_grants VALUES ('lifecycle_auditor', 'acme');
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '\@example.com', 'acme', 'p',
		'eu', jsonb_build_object('n', i))) FROM generate_series(1, 20) i;
	SELECT count(lifecycle_register('u' || i, 'acme')) FROM generate_series(1, 16) i;
	SELECT count(lifecycle_touch('u' || i, 'acme')) FROM generate_series(1, 4) i;
	SELECT lifecycle_complete('u5', 'acme');
	SELECT lifecycle_hold('u6', 'acme', 'litigation');
	SELECT lifecycle_erase('u7', 'acme', 'request 7');
	SELECT lifecycle_archive('u8', 'acme');
	-- a second policy version, and users on it
	SELECT lifecycle_define_policy('p', '{
		"channel": "hooks", "dormant_after": "12 days", "archive_after": "5 days",
		"archive_reminders": ["2 days"], "erase_after": "30 days",
		"hooks": {"archive": "app.on_archive", "erase": "app.on_erase"}}');
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '\@example.com', 'acme', 'p'))
	  FROM generate_series(21, 30) i;
	SELECT count(lifecycle_register('u' || i, 'acme')) FROM generate_series(21, 28) i;
	SELECT lifecycle_invite('d1', 'd1\@example.com');
});

# Travel: the 0.1.0 scheduler advances the users by itself (reminders,
# expiry, dormancy, the archive hook), its sender delivers the messages.
$node->safe_psql('app', q{SELECT lifecycle_travel('13 days')});
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.overdue}) or die '0.1.0 worker did not advance';
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.outbox WHERE status = 'pending'})
  or die '0.1.0 sender did not deliver';
is($node->safe_psql('app', q{
	SELECT string_agg(DISTINCT state::text, ',' ORDER BY state::text) FROM lifecycle.users}),
	'active,archived,dormant,erased,expired,invited',
	'0.1.0 users in many states');
cmp_ok($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.history WHERE actor = 'lifecycle worker'}),
	'>', 20, 'the 0.1.0 worker made transitions');
cmp_ok($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent'}),
	'>', 20, 'the 0.1.0 sender delivered messages');

# Stop the workers (SIGHUP, enabled = off), then let archive reminders and
# archiving fall due: the new library finds them overdue.
sub last_wake
{
	my ($worker) = @_;
	return $node->safe_psql('app',
		"SELECT coalesce(last_wake::text, '') FROM lifecycle.worker_stats WHERE worker = '$worker'");
}
my $before = last_wake('scheduler');
$node->append_conf('postgresql.conf', 'lifecycle.enabled = off');
$node->reload;
$node->poll_query_until('app',
	qq{SELECT last_wake::text > '$before' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
  or die 'the scheduler did not take the reload';
$node->safe_psql('app', q{SELECT lifecycle_travel('6 days')});
my $due = $node->safe_psql('app', 'SELECT count(*) FROM lifecycle.overdue');
cmp_ok($due, '>', 0, 'users are overdue when 0.1.0 stops');

# Every table of 0.1.0 with its 0.1.0 columns (new versions may add
# columns at the end): the rows as one text, in a stable order.
my %old_columns = map { my ($t, $c) = split /\|/, $_, 2; ($t => [ split /,/, $c ]) }
  split /\n/, $node->safe_psql('app', q{
	SELECT c.relname || '|' || string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	 WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'p')
	   AND a.attnum > 0 AND NOT a.attisdropped
	 GROUP BY c.relname});
ok(scalar(keys %old_columns) >= 8, '0.1.0 tables found: ' . join(',', sort keys %old_columns));

# What the update changes in 0.1.0's rows, on purpose, and nothing else:
# 0.2.0's graph gives timers event names of their own (a call and a timer
# no longer share a name), so a due archive or erase timer is renamed.
my %migration = (
	users => {
		next_event => q{CASE next_event WHEN 'archive' THEN 'archive_due'
			WHEN 'erase' THEN 'erase_due' ELSE next_event END},
	},
	# outbox_retention (0.2.0) is added with its built-in default.
	policies => {
		definition => q{CASE WHEN definition ? 'outbox_retention' THEN definition
			ELSE definition || '{"outbox_retention": "30 days"}' END},
	},);

# The rows as SQL; with $migrated, as the update is expected to leave them.
sub rows_sql
{
	my ($migrated) = @_;
	my @parts;
	for my $t (sort keys %old_columns)
	{
		my $cols = join(', ', map {
			$migrated && $migration{$t}{$_} ? "$migration{$t}{$_} AS $_" : $_
		} @{ $old_columns{$t} });
		push @parts, "(SELECT '$t:' || E'\\n' || coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')
		    FROM (SELECT $cols FROM lifecycle.$t) r)";
	}
	return "SELECT concat_ws(E'\\n', " . join(",\n", @parts) . ")";
}
my $rows_sql = rows_sql(0);
my $rows_before = $node->safe_psql('app', $rows_sql);
my $rows_expected = $node->safe_psql('app', rows_sql(1));
my $accounts_before = $node->safe_psql('app',
	q{SELECT string_agg(subject || ':' || status, ',' ORDER BY subject) FROM app.accounts});
$node->stop;

# --- the new package, a restart: the old schema meets the new library ---
reinstall_current();
$old_installed = 0;
$node->append_conf('postgresql.conf', 'lifecycle.enabled = on');
my $log_offset = -s $node->logfile;
$node->start;

my $idle_re = qr/lifecycle (scheduler|sender) idle: extension "lifecycle" in database "app" is at version \Q$old_version\E, the library at version \Q$new_version\E; run ALTER EXTENSION lifecycle UPDATE/;
for my $w (qw(scheduler sender))
{
	$node->wait_for_log(qr/lifecycle $w idle: .*ALTER EXTENSION lifecycle UPDATE/, $log_offset);
}

# Make both workers pass again (SIGHUP): they stay idle, and say it once.
$before = last_wake('scheduler');
my $before_sender = last_wake('sender');
$node->reload;
$node->poll_query_until('app', qq{
	SELECT bool_and(CASE worker WHEN 'scheduler' THEN last_wake::text > '$before'
							   ELSE last_wake::text > '$before_sender' END)
	  FROM lifecycle.worker_stats}) or die 'the workers did not wake on SIGHUP';
my $log = substr(slurp_file($node->logfile), $log_offset);
my @idle = ($log =~ /$idle_re/g);
is(join(',', sort @idle), 'scheduler,sender',
	'each worker logs one idle line, naming the versions and the update');
is($node->safe_psql('app', $rows_sql), $rows_before,
	'the idle workers changed nothing (users, history, outbox, ...)');
is($node->safe_psql('app', q{
	SELECT transitions_total || '/' || errors_total FROM lifecycle.worker_stats
	 WHERE worker = 'scheduler'}), '0/0', 'the idle scheduler made no transition and no error');
unlike($log, qr/ERROR/, 'no ERROR in the log while idle');

# Every C function of the 0.1.0 schema still finds its symbol in the new
# library (the old SQL calls it until the update): the C validator loads
# each one, as CREATE FUNCTION does.
my @symbols = split /\n/, $node->safe_psql('app', q{
	SELECT DISTINCT p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	 WHERE l.lanname = 'c' AND p.probin = '$libdir/lifecycle' ORDER BY 1});
cmp_ok(scalar @symbols, '>', 10, 'the 0.1.0 schema has C functions');
my @missing;
for my $sym (@symbols)
{
	my ($ret, $out, $err) = $node->psql('app',
		"BEGIN; CREATE FUNCTION pg_temp.lc_symbol_check() RETURNS void"
		  . " AS '\$libdir/lifecycle', '$sym' LANGUAGE C; ROLLBACK;");
	push @missing, "$sym: $err" if $err ne '';
}
is(join("\n", @missing), '',
	'every C symbol the 0.1.0 SQL names exists in the new library');

# API calls with the old schema: each works or fails with 55000 naming the
# update; none changes anything (run in a transaction rolled back, and
# the rows are compared after the update).
my $update_re = qr/ERROR:  55000: extension "lifecycle" must be updated: its schema in this database is version \Q$old_version\E, the installed library is version \Q$new_version\E.*HINT:  Run ALTER EXTENSION lifecycle UPDATE\./s;
my @calls = (
	[ q{SELECT lifecycle_invite('n1', 'n1@example.com', 'acme', 'p')}, 'fails' ],
	[ q{SELECT lifecycle_register('u9', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_touch('u1', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_complete('u2', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_restore('u3', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_archive('u4', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_hold('u1', 'acme', 'audit')}, 'fails' ],
	[ q{SELECT lifecycle_release('u6', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_erase('u2', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_define_policy('q', '{}')}, 'fails' ],
	[ q{SELECT lifecycle_add_channel('h2', 'webhook', 'https://example.com/', '}
		  . $secret . q{')}, 'fails' ],
	[ q{SELECT lifecycle_retry_dead()}, 'fails' ],
	[ q{SELECT lifecycle_tick()}, 'fails' ],
	[ q{SELECT lifecycle_travel('1 day')}, 'fails' ],
	[ q{SELECT lifecycle_now() IS NOT NULL}, 'either' ],
	[ q{SELECT state FROM lifecycle_status('u1', 'acme')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle_history('u1', 'acme')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle_graph('p')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.overdue}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.retention_report}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.holds}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.worker_stats}, 'works' ],);
for my $c (@calls)
{
	my ($sql, $expect) = @$c;
	my ($ret, $out, $err) = $node->psql('app',
		"\\set VERBOSITY verbose\nBEGIN;\n$sql;\nROLLBACK;");
	if ($expect eq 'fails')
	{
		like($err, $update_re, "before the update, $sql fails naming the update");
	}
	elsif ($expect eq 'works')
	{
		is($err, '', "before the update, $sql works");
	}
	else
	{
		ok($err eq '' || $err =~ $update_re,
			"before the update, $sql works or fails naming the update")
		  or diag($err);
	}
}

# --- ALTER EXTENSION lifecycle UPDATE --------------------------------------
my ($rows_after, $version_after) = split /\n---\n/, $node->safe_psql('app', qq{
	BEGIN;
	ALTER EXTENSION lifecycle UPDATE;
	SELECT ($rows_sql) || E'\\n---\\n' ||
		   (SELECT extversion FROM pg_extension WHERE extname = 'lifecycle');
	COMMIT;});
is($version_after, $new_version, "updated to $new_version");
is($rows_after, $rows_expected,
	'every 0.1.0 row is intact after the update (but for the timer names)');
isnt($rows_expected, $rows_before, 'the migration of timer names had rows to rename');
$node->safe_psql('contrib_regression', 'ALTER EXTENSION lifecycle UPDATE');

# The update's commit wakes the workers: the overdue users advance.
$node->wait_for_log(qr/lifecycle scheduler resumes: extension "lifecycle" in database "app" is at version \Q$new_version\E/,
	$log_offset);
$node->poll_query_until('app', 'SELECT count(*) = 0 FROM lifecycle.overdue')
  or die 'the overdue users did not advance after the update';
is($node->safe_psql('app', q{
	SELECT count(*) > 0 FROM lifecycle.history
	 WHERE actor = 'lifecycle worker' AND event = 'archive'}),
	't', 'the updated worker archived users');

# ... and keep advancing: the next timers fire, hooks run, mail goes out.
$node->safe_psql('app', q{SELECT lifecycle_travel('31 days')});
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.users
	 WHERE tenant = 'acme' AND state = 'archived'})
  or die 'archived users were not erased after the update';
is($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'acme' AND state = 'erased'}),
	$node->safe_psql('app', q{SELECT count(*) FROM lifecycle.erasures WHERE tenant = 'acme'}),
	'one erasure record per erased user');
isnt($node->safe_psql('app',
		q{SELECT string_agg(subject || ':' || status, ',' ORDER BY subject) FROM app.accounts}),
	$accounts_before, 'the erase hook ran on the upgraded database');
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.outbox WHERE status = 'pending'})
  or die 'the updated sender did not deliver';
is($node->safe_psql('app', q{SELECT lifecycle_invite('n2', 'n2@example.com', 'acme', 'p')})
	  > 0 ? 'ok' : 'no', 'ok', 'new invitations work after the update');

# --- the upgraded schema equals a fresh install's -------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', $app_sql . 'CREATE EXTENSION lifecycle');

# --binary-upgrade is what makes pg_dump list the extension's members
# one by one (otherwise it prints CREATE EXTENSION only).  What must
# differ between two databases is what binary upgrade pins physically, and
# is blanked: OIDs, xids, LSNs, the values of the config sequences (data),
# and pg_dump's random \restrict key.  Nothing about an object is blanked.
sub schema_dump
{
	my ($db) = @_;
	my $out = $node->basedir . "/$db.schema.sql";
	$node->command_ok([ 'pg_dump', '--schema-only', '--binary-upgrade',
			'-d', $node->connstr($db), '-f', $out ],
		"pg_dump --schema-only --binary-upgrade of $db");
	my $dump = slurp_file($out);
	$dump =~ s/^\\(un|)restrict \S+$/\\$1restrict KEY/mg;
	$dump =~ s/^(SELECT pg_catalog\.binary_upgrade_set_next_\w+)\(.*\);$/$1(...);/mg;
	$dump =~ s/^SET relfrozenxid = '\d+', relminmxid = '\d+'$/SET relfrozenxid = XID, relminmxid = XID/mg;
	$dump =~ s/^WHERE oid = '\d+';$/WHERE oid = OID;/mg;
	$dump =~ s/^(SELECT pg_catalog\.setval\('[^']+'), \d+, (true|false)\);$/$1, VALUE);/mg;
	$dump =~ s/^(SELECT pg_catalog\.binary_upgrade_create_empty_extension\('[^']*', '[^']*', \w+, '[^']*', )'\{[\d,]*\}'/$1'{OIDS}'/mg;
	return $dump;
}
my $upgraded = schema_dump('app');
my $fresh = schema_dump('fresh');
like($fresh, qr/ALTER EXTENSION lifecycle ADD TABLE lifecycle\.users;/,
	'the dump lists the extension members');
ok($upgraded eq $fresh, 'the upgraded schema equals a fresh install (pg_dump)')
  or diag(diff_text($fresh, $upgraded));

# The extension's config tables (what pg_dump dumps the data of) and their
# filters, by name.
my $config_sql = q{
	SELECT string_agg(c::regclass::text || ' ' || coalesce(f, ''), E'\n' ORDER BY c::regclass::text)
	  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, f)
	 WHERE e.extname = 'lifecycle'};
is($node->safe_psql('app', $config_sql), $node->safe_psql('fresh', $config_sql),
	'the same config tables and filters as a fresh install');

# --- the regression suite on a database upgraded from 0.1.0 -------------
# pg_regress's settings (test/regress.conf): the workers serve its
# database and stay idle; 00_install (CREATE EXTENSION) is what the
# update replaces, so every other test runs.
$node->append_conf('postgresql.conf', slurp_file("$srcdir/test/regress.conf"));
$node->restart;
my $outdir = PostgreSQL::Test::Utils::tempdir('regress');
mkdir "$outdir/expected";
copy($_, "$outdir/expected/") or die "copy $_: $!" for glob("$srcdir/expected/*.out");
my @tests = grep { $_ ne '00_install' }
  map { m{([^/]+)\.sql$} ? $1 : () } sort glob("$srcdir/test/sql/*.sql");
my $regress_ok = run_log([ $ENV{PG_REGRESS} // 'pg_regress', '--use-existing',
		'--dbname=contrib_regression', '--host=' . $node->host,
		'--port=' . $node->port, "--inputdir=$srcdir/test",
		"--outputdir=$outdir", '--bindir=', @tests ]);
ok($regress_ok, 'pg_regress passes on a database upgraded from 0.1.0 ('
	  . scalar(@tests) . ' tests)')
  or diag(-e "$outdir/regression.diffs" ? slurp_file("$outdir/regression.diffs") : 'no diffs');

$node->stop;
$sink->stop;
done_testing();

# A unified diff of two texts (for the log).
sub diff_text
{
	my ($a, $b) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir('diff');
	open my $fa, '>', "$dir/fresh.sql" or die;
	print $fa $a;
	close $fa;
	open my $fb, '>', "$dir/upgraded.sql" or die;
	print $fb $b;
	close $fb;
	IPC::Run::run([ 'diff', '-u', "$dir/fresh.sql", "$dir/upgraded.sql" ],
		'>', \my $out);
	return $out;
}
