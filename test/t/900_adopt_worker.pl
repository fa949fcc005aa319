# lifecycle_adopt() with the real scheduler worker (no lifecycle_tick()):
# the commit of an adoption wakes the worker; stale accounts go dormant,
# each at the time adoption armed for it (spread evenly, oldest first),
# with its archive notice and the full grace after it; nobody is archived;
# no adopted account is a violation while the worker keeps up.  Then the
# forecast of the remaining timers, and a migration the worker follows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('adopt');
$node->init;
# max_sleep is an hour: the worker must be woken by the commits.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = '1h'
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE webapp LOGIN IN ROLE lifecycle_app;
	CREATE TABLE accounts (subject text, email text, last_seen timestamptz);
	-- 40 stale accounts (seen 100 to 139 days ago), 10 in use.
	INSERT INTO accounts
	SELECT 's' || i, 's' || i || '@example.com', now() - (100 + i) * interval '1 day'
	  FROM generate_series(0, 39) i
	UNION ALL
	SELECT 'f' || i, 'f' || i || '@example.com', now() - interval '1 day'
	  FROM generate_series(1, 10) i;
	GRANT SELECT ON accounts TO webapp;
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'lifecycle scheduler'})
  or die 'no scheduler';

# The ramp: 40 due timers spread over 8 seconds of the real clock.
is($node->safe_psql('postgres', q{SET ROLE webapp;
	SELECT adopted || '/' || skipped FROM lifecycle_adopt('accounts', 'acme', spread => '8 seconds')}),
	'50/0', 'adopted as the application role');

$node->poll_query_until('postgres', q{SELECT count(*) = 40 FROM lifecycle.users
	WHERE tenant = 'acme' AND state = 'dormant'})
  or die 'the worker did not follow the ramp';

# Every dormancy fired by the worker, at or after the time adoption armed
# (due_at), and the armed times are the even spread: step 8 s / 40.
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE h.actor = 'lifecycle worker' AND h.at >= h.due_at)
	  || '/' || count(DISTINCT h.due_at)
	  || '/' || (max(h.due_at) - min(h.due_at))::text
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 'acme' AND h.event = 'dormant'}),
	'40/40/00:00:07.8', 'each stale account went dormant at its armed time, evenly spread');
is($node->safe_psql('postgres', q{
	SELECT bool_and(d.rn = a.rn)
	  FROM (SELECT u.subject, row_number() OVER (ORDER BY h.due_at) rn
			  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
			 WHERE u.tenant = 'acme' AND h.event = 'dormant') d
	  JOIN (SELECT subject, row_number() OVER (ORDER BY last_seen) rn
			  FROM accounts WHERE subject LIKE 's%') a USING (subject)}),
	't', 'the oldest first');
is($node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(*) FILTER (WHERE
		(o.payload ->> 'archive_at')::timestamptz - u.state_since = interval '30 days')
	  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.tenant = 'acme' AND o.message = 'archive_notice'}),
	'40/40', 'one archive notice each, with the full grace after it');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE state = 'archived') || '/' ||
		   count(*) FILTER (WHERE state = 'active') || '/' ||
		   (SELECT count(*) FROM lifecycle.violations WHERE tenant = 'acme')
	  FROM lifecycle.users WHERE tenant = 'acme'}),
	'0/10/0', 'nobody archived, the fresh accounts active, no violation');

# The forecast of the next 40 days: the 40 reminders and archives to come,
# and the 10 fresh accounts stay active (dormancy after 90 days).
is($node->safe_psql('postgres', q{
	SELECT string_agg(event || '=' || n, ' ' ORDER BY event) FROM (
		SELECT event, sum(users) AS n FROM lifecycle_forecast('40 days', tenant => 'acme')
		 GROUP BY event) f}),
	'archive_due=40 archive_reminder=80', 'the forecast of what follows');

# A shortened dormancy migrated while the worker runs: the fresh accounts'
# dormancy is past under the new version and the worker fires it at once.
$node->safe_psql('postgres', q{
	SELECT lifecycle_define_policy('default', '{"dormant_after": "1 hour"}');
	SELECT lifecycle_migrate('default');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 50 FROM lifecycle.users
	WHERE tenant = 'acme' AND state = 'dormant'})
  or die 'the worker did not fire the migrated timers';
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 'acme' AND h.event = 'migrate' AND h.detail = '{"from": 1, "to": 2}'}),
	'50', 'one migrate row per user');
is($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.violations}),
	'0', 'no violation after the migration either');

$node->stop;
done_testing();
