# Copyright (c) lifecycle authors
#
# The upgrade path from 0.2.0 to the current version, as a user takes it:
# install the new package, restart, ALTER EXTENSION lifecycle UPDATE
# (sql/lifecycle--0.2.0--0.3.0.sql and whatever follows it).
#
# 0.2.0 is built from the repository's history (commit b2f4a6e) and
# filled through its own API while its workers run, 0.2.0's features
# included: channels with a webhook sink and hooks, adoption of an
# existing user base, lifecycle_update(), holds with and without an end
# (one lapses), claimed and acknowledged unrouted messages, erasures, a
# policy migration to a new version, an export.  Then the checks of
# test/perl/LifecycleUpgrade.pm (as 500_upgrade.pl does from 0.1.0): idle
# workers with one LOG line until the update, every 0.2.0 table's 0.2.0
# columns intact after it (but for %MIGRATIONS), users advancing under the
# new worker, the schema equal to a fresh install's, the config tables and
# filters the same, and the pg_regress suite passing on the upgraded
# database.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../sinks", "$FindBin::RealBin/../perl";
use LifecycleSinks;
use LifecycleUpgrade;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# 0.2.0: the last commit before 0.3.0's work began.
my $u = LifecycleUpgrade->new(
	old_commit => 'b2f4a6e817d1a69904efeaa7d92503a08b12b890',
	old_version => '0.2.0',
	name => 'upgrade_020');

# --- a cluster running 0.2.0 with its workers ----------------------------
my $sink = start_webhook_sink(secret => lc_secret());
my $secret = lc_secret();
my $node = $u->start_node;

my $policy_p = q{"channel": "hooks",
		"invite_reminders": ["1 day"], "invite_expires_after": "3 days",
		"archive_after": "5 days", "archive_reminders": ["2 days"], "erase_after": "30 days",
		"hooks": {"archive": "app.on_archive", "erase": "app.on_erase"}};
$node->safe_psql('app', qq{
	INSERT INTO app.accounts SELECT 'u' || i FROM generate_series(1, 30) i;
	INSERT INTO app.accounts SELECT 'a' || i FROM generate_series(1, 10) i;
	SELECT lifecycle_add_channel('hooks', 'webhook', '$sink->{url}', '$secret');
	SELECT lifecycle_define_policy('p', '{$policy_p, "dormant_after": "10 days"}');
	SELECT lifecycle_grant_tenant('lifecycle_auditor', 'acme');
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '\@example.com', 'acme', 'p',
		'eu', jsonb_build_object('n', i))) FROM generate_series(1, 20) i;
	SELECT count(lifecycle_register('u' || i, 'acme')) FROM generate_series(1, 16) i;
	SELECT count(lifecycle_touch('u' || i, 'acme')) FROM generate_series(1, 4) i;
	SELECT lifecycle_complete('u5', 'acme');
	SELECT lifecycle_hold('u6', 'acme', 'litigation');
	SELECT lifecycle_hold('u9', 'acme', 'audit', lifecycle_now() + interval '2 days');
	SELECT lifecycle_erase('u7', 'acme', 'request 7');
	SELECT lifecycle_archive('u8', 'acme');
	SELECT lifecycle_archive('u10', 'acme');
	SELECT lifecycle_restore('u10', 'acme');
	SELECT lifecycle_update('u2', 'acme', email => 'u2.new\@example.com',
		attrs => '{"n": 2, "changed": true}', region => 'us');
	SELECT lifecycle_export('u3', 'acme') IS NOT NULL;

	-- an existing user base: stale, fresh and never-registered accounts
	CREATE TABLE app.legacy AS
	SELECT 'a' || i AS subject, 'a' || i || '\@example.com' AS email,
		   lifecycle_now() - i * interval '2 days' AS last_seen, 'eu' AS region,
		   jsonb_build_object('legacy', i) AS attrs, i % 4 <> 0 AS registered
	  FROM generate_series(1, 10) i;
	SELECT * FROM lifecycle_adopt('app.legacy', 'acme', 'p');
	DROP TABLE app.legacy;

	-- a second version of p: its running users migrate to it
	SELECT lifecycle_define_policy('p', '{$policy_p, "dormant_after": "8 days"}');
	SELECT lifecycle_migrate('p') > 0;
	-- a third version, and users on it
	SELECT lifecycle_define_policy('p', '{$policy_p, "dormant_after": "12 days"}');
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '\@example.com', 'acme', 'p'))
	  FROM generate_series(21, 30) i;
	SELECT count(lifecycle_register('u' || i, 'acme')) FROM generate_series(21, 28) i;

	-- unrouted messages the application claims: some acknowledged, some
	-- left claimed, some never claimed
	SELECT lifecycle_define_policy('q', '{"invite_reminders": ["1 day"],
		"invite_expires_after": "3 days", "dormant_after": "100 days",
		"archive_after": "5 days", "archive_reminders": ["2 days"],
		"erase_after": "30 days"}');
	SELECT count(lifecycle_invite('c' || i, 'c' || i || '\@example.com', 'default', 'q'))
	  FROM generate_series(1, 6) i;
	SELECT count(lifecycle_register('c' || i)) FROM generate_series(1, 3) i;
	SELECT count(*) FROM lifecycle_claim_messages(4);
	SELECT lifecycle_ack_messages(ARRAY(SELECT id FROM lifecycle.outbox
		WHERE status = 'unrouted' AND claimed_at IS NOT NULL ORDER BY id LIMIT 2));
	-- erased while the application holds the lease on its invitation
	SELECT lifecycle_erase('c4') > 0;
	SELECT lifecycle_invite('d1', 'd1\@example.com');
});

# Travel: the 0.2.0 scheduler advances the users by itself (reminders,
# expiry, dormancy, the lapsed hold, the archive hook), its sender
# delivers the webhooks.
$node->safe_psql('app', q{SELECT lifecycle_travel('13 days')});
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.overdue}) or die '0.2.0 worker did not advance';
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.outbox WHERE status = 'pending'})
  or die '0.2.0 sender did not deliver';
is($node->safe_psql('app', q{
	SELECT array_agg(DISTINCT state::text) @> '{active,archived,dormant,erased,expired,invited}'
	  FROM lifecycle.users}), 't', '0.2.0 users in many states');
is($node->safe_psql('app', q{
	SELECT array_agg(DISTINCT event) @> '{adopt,update,migrate,export,hold,hold_lapse,restore,archive,dormant,expire}'
	  FROM lifecycle.history}), 't', "0.2.0's events are in the history");
cmp_ok($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.history WHERE actor = 'lifecycle worker'}),
	'>', 20, 'the 0.2.0 worker made transitions');
cmp_ok($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.outbox WHERE status = 'sent' AND channel = 'hooks'}),
	'>', 20, 'the 0.2.0 sender delivered webhooks');
is($node->safe_psql('app', q{
	SELECT count(*) FILTER (WHERE status = 'sent') || '/' ||
		   count(*) FILTER (WHERE status = 'unrouted' AND claimed_at IS NOT NULL) || '/' ||
		   count(*) FILTER (WHERE status = 'unrouted' AND claimed_at IS NULL)
	  FROM lifecycle.outbox WHERE channel IS NULL}) =~ /^2\/1\/[1-9]\d*$/ ? 'ok' : 'no',
	'ok', 'unrouted messages acknowledged, claimed and waiting');


# Stop the workers, then let archive reminders and archiving fall due.
$u->stop_workers;
$node->safe_psql('app', q{SELECT lifecycle_travel('6 days')});

# With the workers stopped, the application claims a message and its
# subject is erased: 0.2.0 cancels the message and keeps the lease.
$node->safe_psql('app', q{SELECT count(*) FROM lifecycle_claim_messages(1)});
$node->safe_psql('app', q{
	SELECT lifecycle_erase(u.subject, u.tenant) FROM lifecycle.users u
	 WHERE u.id = (SELECT o.user_id FROM lifecycle.outbox o
					WHERE o.status = 'unrouted' AND o.claimed_at IS NOT NULL
					ORDER BY o.claimed_at DESC, o.id LIMIT 1)});
cmp_ok($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.outbox
	 WHERE channel IS NULL AND status = 'cancelled' AND claimed_at IS NOT NULL}),
	'>', 0, 'a claimed message cancelled by erasure keeps its lease in 0.2.0');
cmp_ok($node->safe_psql('app', 'SELECT count(*) FROM lifecycle.overdue'),
	'>', 0, 'users are overdue when 0.2.0 stops');
$u->snapshot;

# --- the new package, a restart: the old schema meets the new library ---
$u->restart_new;
$u->check_symbols;
$u->check_calls([
	[ q{SELECT lifecycle_invite('n1', 'n1@example.com', 'acme', 'p')}, 'fails' ],
	[ q{SELECT lifecycle_register('u19', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_touch('u1', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_complete('u2', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_restore('u8', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_archive('u4', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_hold('u1', 'acme', 'audit')}, 'fails' ],
	[ q{SELECT lifecycle_release('u6', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_erase('u2', 'acme')}, 'fails' ],
	[ q{SELECT lifecycle_update('u1', 'acme', email => 'x@example.com')}, 'fails' ],
	[ q{SELECT lifecycle_export('u1', 'acme')}, 'fails' ],
	[ q{CREATE TEMP VIEW legacy_v AS SELECT 'z1'::text AS subject,
		'z1@example.com'::text AS email, now() AS last_seen;
		SELECT * FROM lifecycle_adopt('legacy_v', 'acme', 'p')}, 'fails' ],
	[ q{SELECT lifecycle_migrate('p')}, 'fails' ],
	[ q{SELECT count(*) FROM lifecycle_claim_messages(1)}, 'fails' ],
	[ q{SELECT lifecycle_ack_messages(ARRAY[1::bigint])}, 'fails' ],
	[ q{SELECT lifecycle_define_policy('q2', '{}')}, 'fails' ],
	[ q{SELECT lifecycle_add_channel('h2', 'webhook', 'https://example.com/', '}
		  . $secret . q{')}, 'fails' ],
	[ q{SELECT lifecycle_retry_dead()}, 'fails' ],
	[ q{SELECT lifecycle_tick()}, 'fails' ],
	[ q{SELECT lifecycle_travel('1 day')}, 'fails' ],
	[ q{SELECT lifecycle_prune_history()}, 'either' ],
	[ q{SELECT lifecycle_prune_outbox()}, 'either' ],
	[ q{SELECT lifecycle_grant_tenant('lifecycle_auditor', 'beta')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle_forecast('30 days')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.transitions('p')}, 'either' ],
	[ q{SELECT lifecycle_now() IS NOT NULL}, 'either' ],
	[ q{SELECT state FROM lifecycle_status('u1', 'acme')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle_history('u1', 'acme')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle_graph('p')}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.overdue}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.violations}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.retention_report}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.metrics}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.holds}, 'either' ],
	[ q{SELECT count(*) FROM lifecycle.worker_stats}, 'works' ],]);

# --- ALTER EXTENSION lifecycle UPDATE: 0.2.0 -> 0.3.0 ---------------------
# The lease on the cancelled message ends (%MIGRATIONS): a row to change.
$u->update(expect_changes => 1);
cmp_ok($u->worker_events_since_update('archive_due'), '>', 0,
	'the updated worker archived the overdue users');

# The unrouted messages 0.2.0 left, claimed (their lease over) or waiting,
# are claimed and acknowledged (before outbox_retention prunes them).
my $claimed = $node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle_claim_messages(100, '5 minutes')});
cmp_ok($claimed, '>', 0, 'unrouted messages of 0.2.0 can be claimed after the update');
is($node->safe_psql('app', q{
	SELECT lifecycle_ack_messages(ARRAY(SELECT id FROM lifecycle.outbox
		WHERE channel IS NULL AND status = 'unrouted' AND claimed_at IS NOT NULL))}),
	$claimed, '... and acknowledged');

# ... and keep advancing: the next timers fire, hooks run, webhooks go
# out, the held user stays.
$node->safe_psql('app', q{SELECT lifecycle_travel('31 days')});
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.users
	 WHERE tenant = 'acme' AND state = 'archived'})
  or die 'archived users were not erased after the update';
is($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'acme' AND state = 'erased'}),
	$node->safe_psql('app', q{SELECT count(*) FROM lifecycle.erasures WHERE tenant = 'acme'}),
	'one erasure record per erased user');
cmp_ok($node->safe_psql('app', q{
	SELECT count(*) FROM lifecycle.erasures WHERE requested_by = 'lifecycle worker'
	   AND erased_at >= lifecycle_now() - interval '31 days'}),
	'>', 0, 'the updated worker erased users');
isnt($u->accounts, $u->accounts_before, 'the erase hook ran on the upgraded database');
is($node->safe_psql('app', q{
	SELECT state || ' ' || held FROM lifecycle_status('u6', 'acme')}),
	'active true', 'the user held in 0.2.0 is still held and was not advanced');
$node->poll_query_until('app', q{
	SELECT count(*) = 0 FROM lifecycle.outbox WHERE status = 'pending'})
  or die 'the updated sender did not deliver';

# The 0.2.0 calls work on the upgraded database.
is($node->safe_psql('app', q{
	SELECT lifecycle_invite('n2', 'n2@example.com', 'acme', 'p') > 0;
	SELECT lifecycle_register('n2', 'acme');
	SELECT lifecycle_update('n2', 'acme', attrs => '{"k": 1}');
	SELECT count(*) FROM (SELECT lifecycle_release('u6', 'acme')) r;
	CREATE TABLE app.legacy2 AS SELECT 'b1'::text AS subject,
		'b1@example.com'::text AS email, lifecycle_now() AS last_seen;
	SELECT adopted FROM lifecycle_adopt('app.legacy2', 'acme', 'p');
	DROP TABLE app.legacy2;
	SELECT lifecycle_define_policy('p', '{"dormant_after": "20 days"}') > 0;
	SELECT lifecycle_migrate('p') > 0;
	SELECT (lifecycle_export('n2', 'acme') ->> 'state');}),
	"t\nactive\nactive\n1\n1\nt\nt\nactive", 'invite, register, update, release, adopt, migrate, export work after the update');

# --- the upgraded schema equals a fresh install's; pg_regress on it -------
$u->check_fresh_schema;
$u->check_regress;

$u->finish;
$sink->stop;
done_testing();
