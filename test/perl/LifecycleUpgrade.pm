# Copyright (c) lifecycle authors
#
# The upgrade path from an older release, as a user takes it: install the
# new package, restart, ALTER EXTENSION lifecycle UPDATE.  Shared by the
# upgrade tests (test/t/500_upgrade.pl from 0.1.0, 501_upgrade_0.2.0.pl
# from 0.2.0); each fills the old release through its own API, the rest
# is here:
#
#   my $u = LifecycleUpgrade->new(old_commit => $hash, old_version => '0.2.0');
#   my $node = $u->start_node;           # old library preloaded, workers on
#   ... fill "app" through the old API, let the old workers advance it ...
#   $u->stop_workers;                    # enabled = off; then make users due
#   $u->snapshot;                        # every old table's old columns
#   $u->restart_new;                     # new library: idle workers, one LOG line
#   $u->check_symbols; $u->check_calls(\@calls);
#   $u->update;                          # ALTER EXTENSION: rows as expected
#   ... users keep advancing ...
#   $u->check_fresh_schema; $u->check_regress; $u->finish;
#
# The old release is built from the repository's own history (its commit,
# by hash, through git archive) and installed into scripts/test.sh's
# private copy of PostgreSQL; the current tree is installed back at the
# end, whatever happens.  A test is skipped where the clone has no history
# (an export without .git, a shallow clone) or outside scripts/test.sh.
#
# The update goes through every sql/lifecycle--A--B.sql from the old
# version to the control file's (0.1.0 -> 0.2.0 -> 0.3.0).  %MIGRATIONS
# below lists, per script, what it changes on purpose in the rows of the
# tables that existed before it; everything else must come through
# unchanged.  Whoever makes an update script change old rows says so there.
package LifecycleUpgrade;

use strict;
use warnings FATAL => 'all';

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# What each update script changes in the rows of the tables that existed
# before it, on purpose, per table and column: an SQL expression over the
# table's columns before the script giving the column's value after it.
# Two more keys per table: -relation, where the rows are read after the
# update when the script renames the table (a relation with the old
# columns: a view will do); -where, a condition on the rows read after the
# update that leaves out rows the script adds on purpose.  Columns a script
# adds are not compared (new versions add columns at the end).
our %MIGRATIONS = (
	'0.1.0--0.2.0' => {
		# 0.2.0's graph gives timers event names of their own (a call and
		# a timer no longer share a name): a due archive or erase timer is
		# renamed.
		users => {
			next_event => q{CASE next_event WHEN 'archive' THEN 'archive_due'
				WHEN 'erase' THEN 'erase_due' ELSE next_event END},
		},
		# outbox_retention (0.2.0) is added with its built-in default.
		policies => {
			definition => q{CASE WHEN definition ? 'outbox_retention' THEN definition
				ELSE definition || '{"outbox_retention": "30 days"}' END},
		},
	},
	'0.2.0--0.3.0' => {
		# Issue 20: an unrouted message the application had leased and an
		# erasure then cancelled loses the lease 0.2.0 left on it.
		outbox => {
			claimed_at => q{CASE WHEN status = 'cancelled' AND channel IS NULL
				THEN NULL ELSE claimed_at END},
		},
		# Issue 18: the built-in dsar workflow's same-named policy is
		# defined (unless a policy already has the name): a new row.
		policies => {
			-where => q{NOT (name = 'dsar' AND workflow = 'dsar')},
		},
	},);

my $srcdir = abs_path(dirname(__FILE__) . '/../..');

# The versions sql/lifecycle--A--B.sql leads through from $from to $to,
# ("A--B", ...); dies if there is no such chain.
sub update_chain
{
	my ($from, $to) = @_;
	my %next;
	for my $f (glob("$srcdir/sql/lifecycle--*--*.sql"))
	{
		$next{$1} = $2 if $f =~ m{/lifecycle--([^-/]+)--([^-/]+)\.sql$};
	}
	my @chain;
	my $v = $from;
	while ($v ne $to)
	{
		die "no update script from $v (sql/lifecycle--$v--*.sql) on the way to $to"
		  unless defined $next{$v};
		push @chain, "$v--$next{$v}";
		$v = $next{$v};
		die "update scripts loop at $v" if @chain > 100;
	}
	return @chain;
}

# Only one upgrade object a test; it gets the current tree back at exit.
my $current;
END
{
	if ($current && $current->{old_installed})
	{
		local $?;
		eval { $current->reinstall_current };
	}
}

sub new
{
	my ($class, %args) = @_;
	my $self = bless {
		old_commit => $args{old_commit},
		old_version => $args{old_version},
		name => $args{name} // 'upgrade',
		pg_config => $ENV{PG_CONFIG} // '',
		git_dir => $ENV{LIFECYCLE_GIT_DIR} // '',
	}, $class;
	my ($old, $hash) = @$self{qw(old_version old_commit)};

	plan skip_all => 'the upgrade test installs into the private PostgreSQL copy '
	  . 'of scripts/test.sh (LIFECYCLE_PGROOT and PG_CONFIG unset): run it from there'
	  unless ($ENV{LIFECYCLE_PGROOT} // '') ne '' && $self->{pg_config} ne '';
	plan skip_all => "no repository history to build $old from "
	  . '(LIFECYCLE_GIT_DIR unset: the tree is not a git clone)'
	  unless $self->{git_dir} ne '' && -d $self->{git_dir};
	plan skip_all => "the repository's history lacks the $old commit "
	  . "$hash (a shallow clone?)"
	  unless IPC::Run::run([ 'git', "--git-dir=$self->{git_dir}", 'cat-file', '-e',
			"$hash^{commit}" ], '>', \my $o, '2>', \my $e);

	($self->{new_version}) = slurp_file("$srcdir/lifecycle.control")
	  =~ /^default_version\s*=\s*'([^']+)'/m;
	die "no default_version in lifecycle.control" unless defined $self->{new_version};
	$self->{chain} = [ update_chain($old, $self->{new_version}) ];
	$current = $self;

	# Build and install the old release.
	my $old_src = PostgreSQL::Test::Utils::tempdir("lifecycle-$old");
	run_log([ 'git', "--git-dir=$self->{git_dir}", 'archive', '--format=tar', $hash ],
		'|', [ 'tar', '-x', '-C', $old_src ])
	  or die "git archive of $hash failed";
	ok(-f "$old_src/Makefile", "$old ($hash) exported from the history");
	run_log([ 'make', '-C', $old_src, '-s', "PG_CONFIG=$self->{pg_config}" ])
	  or die "the $old build failed (see the log)";
	$self->{old_installed} = 1;
	$self->make_install($old_src, $old);
	return $self;
}

sub node { return $_[0]->{node}; }
sub old_version { return $_[0]->{old_version}; }
sub new_version { return $_[0]->{new_version}; }

# Install a source tree's build into the private PostgreSQL copy.
sub make_install
{
	my ($self, $dir, $what) = @_;
	run_log([ 'make', '-C', $dir, '-s', "PG_CONFIG=$self->{pg_config}", 'install' ])
	  or die "make install of $what failed (see the log)";
	return;
}

# Put the current tree back as it was installed: its build, and no old
# install script left beside it.
sub reinstall_current
{
	my ($self) = @_;
	$self->make_install($srcdir, 'the current tree');
	my $sharedir = `"$self->{pg_config}" --sharedir`;
	chomp $sharedir;
	unlink "$sharedir/extension/lifecycle--$self->{old_version}.sql";
	$self->{old_installed} = 0;
	return;
}

# The application side of the hooks, the same in every database compared.
sub app_sql
{
	return q{
	CREATE SCHEMA app;
	CREATE TABLE app.accounts (subject text PRIMARY KEY, status text NOT NULL DEFAULT 'live');
	CREATE FUNCTION app.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ UPDATE app.accounts a SET status = 'archived' WHERE a.subject = $1 $$;
	CREATE FUNCTION app.on_erase(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ DELETE FROM app.accounts a WHERE a.subject = $1 $$;
};
}

# A cluster preloading the old library with its workers, the old version
# created in "app" (the workers' database, with app_sql) and in
# contrib_regression (pg_regress's database, upgraded empty like a fresh
# install would be).  max_sleep is an hour: every wake-up comes from a
# commit, a SIGHUP or a restart.
sub start_node
{
	my ($self) = @_;
	my $node = PostgreSQL::Test::Cluster->new($self->{name});
	$self->{node} = $node;
	$node->init;
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
	$node->safe_psql('postgres', 'CREATE DATABASE contrib_regression');
	for my $db (qw(app contrib_regression))
	{
		$node->safe_psql($db, "CREATE EXTENSION lifecycle VERSION '$self->{old_version}'");
	}
	$node->safe_psql('app', app_sql());
	is($node->safe_psql('app',
			q{SELECT extversion FROM pg_extension WHERE extname = 'lifecycle'}),
		$self->{old_version}, "$self->{old_version} is installed");
	return $node;
}

sub last_wake
{
	my ($self, $worker) = @_;
	return $self->{node}->safe_psql('app',
		"SELECT coalesce(last_wake::text, '') FROM lifecycle.worker_stats WHERE worker = '$worker'");
}

# Stop the old workers (SIGHUP, enabled = off) and wait until the
# scheduler took it.
sub stop_workers
{
	my ($self) = @_;
	my $node = $self->{node};
	my $before = $self->last_wake('scheduler');
	$node->append_conf('postgresql.conf', 'lifecycle.enabled = off');
	$node->reload;
	$node->poll_query_until('app',
		qq{SELECT last_wake::text > '$before' FROM lifecycle.worker_stats WHERE worker = 'scheduler'})
	  or die 'the scheduler did not take the reload';
	return;
}

# The rows of every old table, old columns only, as one text in a stable
# order: $mode 'old' reads them as they are, 'expected' as the update
# scripts are to leave them (%MIGRATIONS, one layer a script), 'new' as
# the updated schema shows them (-relation, -where).
sub rows_sql
{
	my ($self, $mode) = @_;
	my @parts;
	for my $t (sort keys %{ $self->{old_columns} })
	{
		my @cols = @{ $self->{old_columns}{$t} };
		my $rel = "lifecycle.$t";
		my @where;
		if ($mode eq 'expected')
		{
			my $n = 0;
			for my $step (@{ $self->{chain} })
			{
				my $m = $MIGRATIONS{$step}{$t} // {};
				my $sel = join(', ', map {
					defined $m->{$_} ? "$m->{$_} AS $_" : $_ } @cols);
				$rel = "(SELECT $sel FROM $rel) m" . $n++;
			}
		}
		elsif ($mode eq 'new')
		{
			for my $step (@{ $self->{chain} })
			{
				my $m = $MIGRATIONS{$step}{$t} // {};
				$rel = $m->{-relation} if defined $m->{-relation};
				push @where, "($m->{-where})" if defined $m->{-where};
			}
		}
		my $where = @where ? ' WHERE ' . join(' AND ', @where) : '';
		my $cols = join(', ', @cols);
		push @parts, "(SELECT '$t:' || E'\\n' || coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')
		    FROM (SELECT $cols FROM $rel$where) r)";
	}
	return "SELECT concat_ws(E'\\n', " . join(",\n", @parts) . ")";
}

# Every table of the old version with its columns (new versions may add
# columns at the end), the rows now and as the update is to leave them,
# and app.accounts (the hooks' side).
sub snapshot
{
	my ($self, %args) = @_;
	my $node = $self->{node};
	$self->{old_columns} = {
		map { my ($t, $c) = split /\|/, $_, 2; ($t => [ split /,/, $c ]) }
		  split /\n/, $node->safe_psql('app', q{
		SELECT c.relname || '|' || string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
		  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		 WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'p')
		   AND a.attnum > 0 AND NOT a.attisdropped
		 GROUP BY c.relname}) };
	ok(scalar(keys %{ $self->{old_columns} }) >= ($args{min_tables} // 8),
		"$self->{old_version} tables found: " . join(',', sort keys %{ $self->{old_columns} }));
	$self->{rows_before} = $node->safe_psql('app', $self->rows_sql('old'));
	$self->{rows_expected} = $node->safe_psql('app', $self->rows_sql('expected'));
	$self->{accounts_before} = $self->accounts;
	return;
}

sub rows_before { return $_[0]->{rows_before}; }
sub rows_expected { return $_[0]->{rows_expected}; }
sub accounts_before { return $_[0]->{accounts_before}; }

sub accounts
{
	my ($self) = @_;
	return $self->{node}->safe_psql('app',
		q{SELECT string_agg(subject || ':' || status, ',' ORDER BY subject) FROM app.accounts});
}

# The new package, a restart: the old schema meets the new library.  Until
# the update the workers idle with one LOG line each naming ALTER
# EXTENSION lifecycle UPDATE (also after a SIGHUP) and change nothing.
sub restart_new
{
	my ($self) = @_;
	my $node = $self->{node};
	my ($old, $new) = @$self{qw(old_version new_version)};
	$node->stop;
	$self->reinstall_current;
	$node->append_conf('postgresql.conf', 'lifecycle.enabled = on');
	my $log_offset = -s $node->logfile;
	$self->{log_offset} = $log_offset;
	$node->start;

	my $idle_re = qr/lifecycle (scheduler|sender) idle: extension "lifecycle" in database "app" is at version \Q$old\E, the library at version \Q$new\E; run ALTER EXTENSION lifecycle UPDATE/;
	for my $w (qw(scheduler sender))
	{
		$node->wait_for_log(qr/lifecycle $w idle: .*ALTER EXTENSION lifecycle UPDATE/, $log_offset);
	}

	# Make both workers pass again (SIGHUP): they stay idle, and say it once.
	my $before = $self->last_wake('scheduler');
	my $before_sender = $self->last_wake('sender');
	$node->reload;
	$node->poll_query_until('app', qq{
		SELECT bool_and(CASE worker WHEN 'scheduler' THEN last_wake::text > '$before'
								   ELSE last_wake::text > '$before_sender' END)
		  FROM lifecycle.worker_stats WHERE worker IN ('scheduler', 'sender')})
	  or die 'the workers did not wake on SIGHUP';
	my $log = substr(slurp_file($node->logfile), $log_offset);
	my @idle = ($log =~ /$idle_re/g);
	is(join(',', sort @idle), 'scheduler,sender',
		'each worker logs one idle line, naming the versions and the update');
	is($node->safe_psql('app', $self->rows_sql('old')), $self->{rows_before},
		'the idle workers changed nothing (users, history, outbox, ...)');
	is($node->safe_psql('app', q{
		SELECT transitions_total || '/' || errors_total FROM lifecycle.worker_stats
		 WHERE worker = 'scheduler'}), '0/0', 'the idle scheduler made no transition and no error');
	unlike($log, qr/ERROR/, 'no ERROR in the log while idle');
	return;
}

# Every C function of the old schema still finds its symbol in the new
# library (the old SQL calls it until the update): the C validator loads
# each one, as CREATE FUNCTION does.
sub check_symbols
{
	my ($self) = @_;
	my $node = $self->{node};
	my @symbols = split /\n/, $node->safe_psql('app', q{
		SELECT DISTINCT p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		 WHERE l.lanname = 'c' AND p.probin = '$libdir/lifecycle' ORDER BY 1});
	cmp_ok(scalar @symbols, '>', 10, "the $self->{old_version} schema has C functions");
	my @missing;
	for my $sym (@symbols)
	{
		my ($ret, $out, $err) = $node->psql('app',
			"BEGIN; CREATE FUNCTION pg_temp.lc_symbol_check() RETURNS void"
			  . " AS '\$libdir/lifecycle', '$sym' LANGUAGE C; ROLLBACK;");
		push @missing, "$sym: $err" if $err ne '';
	}
	is(join("\n", @missing), '',
		"every C symbol the $self->{old_version} SQL names exists in the new library");
	return;
}

# API calls with the old schema: each ([sql, 'fails' | 'works' | 'either'])
# works or fails with 55000 naming the update; none changes anything (run
# in a transaction rolled back, and the rows are compared after the
# update).
sub check_calls
{
	my ($self, $calls) = @_;
	my $node = $self->{node};
	my ($old, $new) = @$self{qw(old_version new_version)};
	my $update_re = qr/ERROR:  55000: extension "lifecycle" must be updated: its schema in this database is version \Q$old\E, the installed library is version \Q$new\E.*HINT:  Run ALTER EXTENSION lifecycle UPDATE\./s;
	for my $c (@$calls)
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
	return;
}

# ALTER EXTENSION lifecycle UPDATE in "app" (the rows read in the same
# transaction) and in contrib_regression; the workers resume (the update's
# commit wakes them) and the overdue users advance.
sub update
{
	my ($self, %args) = @_;
	my $node = $self->{node};
	my ($old, $new) = @$self{qw(old_version new_version)};
	my $rows_new = $self->rows_sql('new');
	my ($rows_after, $version_after, $updated_at) = split /\n---\n/, $node->safe_psql('app', qq{
		BEGIN;
		ALTER EXTENSION lifecycle UPDATE;
		SELECT ($rows_new) || E'\\n---\\n' ||
			   (SELECT extversion FROM pg_extension WHERE extname = 'lifecycle') ||
			   E'\\n---\\n' || lifecycle_now();
		COMMIT;});
	$self->{updated_at} = $updated_at;
	is($version_after, $new, "updated to $new through " . join(', ', @{ $self->{chain} }));
	is($rows_after, $self->{rows_expected},
		"every $old row is intact after the update (but for what the scripts change on purpose)");
	if ($args{expect_changes})
	{
		isnt($self->{rows_expected}, $self->{rows_before},
			'the scripts had rows to change on purpose');
	}
	$node->safe_psql('contrib_regression', 'ALTER EXTENSION lifecycle UPDATE');

	$node->wait_for_log(qr/lifecycle scheduler resumes: extension "lifecycle" in database "app" is at version \Q$new\E/,
		$self->{log_offset});
	$node->poll_query_until('app', 'SELECT count(*) = 0 FROM lifecycle.overdue')
	  or die 'the overdue users did not advance after the update';
	return;
}

# How many history rows the worker wrote for this event (a timer's name)
# since the update.
sub worker_events_since_update
{
	my ($self, $event) = @_;
	return $self->{node}->safe_psql('app', qq{
		SELECT count(*) FROM lifecycle.history
		 WHERE actor = 'lifecycle worker' AND event = '$event'
		   AND at >= '$self->{updated_at}'});
}

# The upgraded schema equals a fresh install's (pg_dump --schema-only
# --binary-upgrade), and the extension's config tables and their filters
# are the same.
sub check_fresh_schema
{
	my ($self) = @_;
	my $node = $self->{node};
	$node->safe_psql('postgres', 'CREATE DATABASE fresh');
	$node->safe_psql('fresh', app_sql() . 'CREATE EXTENSION lifecycle');

	my $upgraded = $self->schema_dump('app');
	my $fresh = $self->schema_dump('fresh');
	like($fresh, qr/ALTER EXTENSION lifecycle ADD TABLE lifecycle\.users;/,
		'the dump lists the extension members');
	ok($upgraded eq $fresh,
		"the schema upgraded from $self->{old_version} equals a fresh install (pg_dump)")
	  or diag(diff_text($fresh, $upgraded));

	# The config tables (what pg_dump dumps the data of) and their filters.
	my $config_sql = q{
		SELECT string_agg(c::regclass::text || ' ' || coalesce(f, ''), E'\n' ORDER BY c::regclass::text)
		  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, f)
		 WHERE e.extname = 'lifecycle'};
	is($node->safe_psql('app', $config_sql), $node->safe_psql('fresh', $config_sql),
		'the same config tables and filters as a fresh install');
	return;
}

# --binary-upgrade is what makes pg_dump list the extension's members
# one by one (otherwise it prints CREATE EXTENSION only).  What must
# differ between two databases is what binary upgrade pins physically, and
# is blanked: OIDs, xids, LSNs, the values of the config sequences (data),
# and pg_dump's random \restrict key.  Nothing about an object is blanked.
sub schema_dump
{
	my ($self, $db) = @_;
	my $node = $self->{node};
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

# The whole pg_regress suite on contrib_regression, upgraded from the old
# version, with pg_regress's settings (test/regress.conf: the workers
# serve its database and stay idle); 00_install (CREATE EXTENSION) is
# what the update replaces, so every other test runs.
sub check_regress
{
	my ($self) = @_;
	my $node = $self->{node};
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
	ok($regress_ok, "pg_regress passes on a database upgraded from $self->{old_version} ("
		  . scalar(@tests) . ' tests)')
	  or diag(-e "$outdir/regression.diffs" ? slurp_file("$outdir/regression.diffs") : 'no diffs');
	return;
}

sub finish
{
	my ($self) = @_;
	$self->{node}->stop;
	return;
}

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

1;
