# Copyright (c) lifecycle authors
#
# The upgrade path from 0.1.0 to the current version through every update
# script (0.1.0 -> 0.2.0 -> 0.3.0), as a user takes it: install the new
# package, restart, ALTER EXTENSION lifecycle UPDATE.
#
# 0.1.0 is built from the repository's own history (its last commit, by
# hash) and installed into scripts/test.sh's private copy of PostgreSQL;
# a cluster preloading it is filled through its API while its workers
# run.  Then the current tree is installed over it and the cluster
# restarted: until the update, the workers idle with one LOG line naming
# ALTER EXTENSION lifecycle UPDATE, and API calls either work or fail with
# 55000 naming the update.  After the update: the data is intact (but for
# what the scripts change on purpose, test/perl/LifecycleUpgrade.pm's
# %MIGRATIONS), the overdue users advance and keep advancing, the schema
# dump equals a fresh install's, the config tables and their filters are
# the same, and the whole pg_regress suite passes on a database upgraded
# from 0.1.0.  The machinery is LifecycleUpgrade.pm's, shared with
# 501_upgrade_0.2.0.pl.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks", "$FindBin::RealBin/../perl";
use LifecycleSinks;
use LifecycleUpgrade;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The last commit of 0.1.0.
my $u = LifecycleUpgrade->new(
	old_commit => '220c1ab38be7a866411ebe06866c6dd1be674bb7',
	old_version => '0.1.0');

# --- a cluster running 0.1.0 with its workers ----------------------------
my $sink = start_webhook_sink(secret => lc_secret());
my $secret = lc_secret();
my $node = $u->start_node;

$node->safe_psql('app', qq{
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

# Stop the workers, then let archive reminders and archiving fall due: the
# new library finds them overdue.
$u->stop_workers;
$node->safe_psql('app', q{SELECT lifecycle_travel('6 days')});
cmp_ok($node->safe_psql('app', 'SELECT count(*) FROM lifecycle.overdue'),
	'>', 0, 'users are overdue when 0.1.0 stops');
$u->snapshot;

# --- the new package, a restart: the old schema meets the new library ---
$u->restart_new;
$u->check_symbols;
$u->check_calls([
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
	[ q{SELECT count(*) FROM lifecycle.worker_stats}, 'works' ],]);

# --- ALTER EXTENSION lifecycle UPDATE: 0.1.0 -> 0.2.0 -> ... ------------
# 0.2.0 renamed the due archive and erase timers: rows to change.
$u->update(expect_changes => 1);
cmp_ok($u->worker_events_since_update('archive_due'), '>', 0,
	'the updated worker archived the overdue users');

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
isnt($u->accounts, $u->accounts_before, 'the erase hook ran on the upgraded database');
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.outbox WHERE status = 'pending'})
  or die 'the updated sender did not deliver';
is($node->safe_psql('app', q{SELECT lifecycle_invite('n2', 'n2@example.com', 'acme', 'p')})
	  > 0 ? 'ok' : 'no', 'ok', 'new invitations work after the update');

# --- the upgraded schema equals a fresh install's; pg_regress on it -------
$u->check_fresh_schema;
$u->check_regress;

$u->finish;
$sink->stop;
done_testing();
