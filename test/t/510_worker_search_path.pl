# Copyright (c) lifecycle authors
#
# A hook's own SET search_path applies when the scheduler runs it, as
# README.md ("Policies") promises and as it does under lifecycle_tick():
# the workers pin search_path = pg_catalog, pg_temp as a session setting
# at the start of every transaction (src/worker.c), which a function's SET
# clause may override for its own duration.  Every user of every batch
# runs the hook under the hook's path.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('search_path');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = '1h'
lifecycle.batch_size = 2
});
$node->start;

# The hook names its table unqualified and brings its own search_path.
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE SCHEMA app;
	CREATE TABLE app.accounts (subject text PRIMARY KEY, status text NOT NULL DEFAULT 'live',
		archived_under text);
	CREATE FUNCTION app.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql SET search_path = app
	AS $$
	BEGIN
		UPDATE accounts a SET status = 'archived',
			   archived_under = pg_catalog.current_setting('search_path')
		 WHERE a.subject = on_archive.subject;
	END $$;
	SELECT lifecycle_define_policy('sp', '{"archive_after": "1 day",
		"archive_reminders": [], "hooks": {"archive": "app.on_archive"}}');
	INSERT INTO app.accounts SELECT 's' || i FROM generate_series(1, 5) i;
	SELECT count(lifecycle_invite('s' || i, 's' || i || '@example.com', 'sp', 'sp'))
	  FROM generate_series(1, 5) i;
	SELECT count(lifecycle_register('s' || i, 'sp')) FROM generate_series(1, 5) i;
	SELECT count(lifecycle_complete('s' || i, 'sp')) FROM generate_series(1, 5) i;
});

# The travel's commit wakes the scheduler; batches of 2: three
# transactions, each running the hook with its own search_path.
$node->safe_psql('postgres', q{SELECT lifecycle_travel('2 days')});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 5 FROM lifecycle.users WHERE tenant = 'sp' AND state = 'archived'})
  or diag('not archived; last errors: ' . $node->safe_psql('postgres',
	q{SELECT string_agg(coalesce(last_error, '-'), ' | ') FROM lifecycle.users WHERE tenant = 'sp'}));
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'sp' AND state = 'archived'}),
	'5', 'the scheduler archived every user, running the hook');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT status || ':' || archived_under, ',') FROM app.accounts}),
	'archived:app', "the hook ran under its own SET search_path, for every user");
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'sp' AND (retries > 0 OR last_error IS NOT NULL)}),
	'0', 'no hook failed');
is($node->safe_psql('postgres', q{
	SELECT batches >= 3 AND errors_total = 0 FROM lifecycle.worker_stats WHERE worker = 'scheduler'}),
	't', 'in several batches, without a worker error');

$node->stop;
done_testing();
