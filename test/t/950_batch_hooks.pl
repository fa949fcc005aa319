# Hook and erasure transitions are carried out set-based: a tick's batch
# of users due for archiving or erasure is written in one subtransaction
# (all evidence rows of a clean batch share one transaction id), and only
# when a hook fails is the group split in halves, so a failing hook holds
# back its own user only: that user stays due with its error and a retry
# time, every other user of the batch advances, the application's rows of
# the others are changed exactly once, and nobody else carries the error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $n = 200;
my $node = PostgreSQL::Test::Cluster->new('batch_hooks');
$node->init;
$node->append_conf('postgresql.conf', qq{
lifecycle.allow_time_travel = on
lifecycle.batch_size = 1000
});
$node->start;
$node->safe_psql('postgres', qq{
	SET client_min_messages = error;
	CREATE EXTENSION lifecycle;
	CREATE SCHEMA app;
	CREATE TABLE app.accounts (subject text PRIMARY KEY, status text NOT NULL DEFAULT 'live');
	CREATE TABLE app.fail (subject text PRIMARY KEY);
	CREATE SEQUENCE app.calls;
	CREATE FUNCTION app.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS \$\$
	BEGIN
		PERFORM nextval('app.calls');
		IF EXISTS (SELECT 1 FROM app.fail f WHERE f.subject = on_archive.subject) THEN
			RAISE EXCEPTION 'the application refuses to archive %', subject;
		END IF;
		UPDATE app.accounts a SET status = 'archived' WHERE a.subject = on_archive.subject;
	END \$\$;
	CREATE FUNCTION app.on_erase(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS \$\$
	BEGIN
		PERFORM nextval('app.calls');
		IF EXISTS (SELECT 1 FROM app.fail f WHERE f.subject = on_erase.subject) THEN
			RAISE EXCEPTION 'the application refuses to erase %', subject;
		END IF;
		DELETE FROM app.accounts a WHERE a.subject = on_erase.subject;
	END \$\$;
	SELECT lifecycle_define_policy('batch', '{"archive_after": "10 days",
		"archive_reminders": [], "erase_after": "100 days",
		"hooks": {"archive": "app.on_archive", "erase": "app.on_erase"}}');
	INSERT INTO app.accounts (subject) SELECT 'u-' || i FROM generate_series(1, $n) i;
	SELECT count(lifecycle_invite('u-' || i, 'u' || i || '\@example.com', 'b', 'batch'))
	  FROM generate_series(1, $n) i;
	SELECT count(lifecycle_register('u-' || i, 'b')) FROM generate_series(1, $n) i;
	SELECT count(lifecycle_complete('u-' || i, 'b')) FROM generate_series(1, $n) i;
});

# Archive: two users of the batch fail, in different halves.
$node->safe_psql('postgres', q{
	INSERT INTO app.fail VALUES ('u-7'), ('u-150');
	SELECT lifecycle_travel('10 days 1 minute');
	SELECT lifecycle_tick();
});
is($node->safe_psql('postgres', q{
	SELECT state, count(*) FROM lifecycle.users WHERE tenant = 'b'
	 GROUP BY state ORDER BY state}),
	"archived|" . ($n - 2) . "\ncompleted|2", 'all but the two failing users archived');
is($node->safe_psql('postgres', q{
	SELECT string_agg(subject || ':' || retries || ':' || (retry_at > lifecycle_now()) || ':' ||
					  (last_error LIKE '%refuses to archive ' || subject), ',' ORDER BY subject)
	  FROM lifecycle.users WHERE tenant = 'b' AND (retries > 0 OR last_error IS NOT NULL
		OR retry_at IS NOT NULL)}),
	'u-150:1:true:true,u-7:1:true:true', 'each failing user carries its own error and retry; nobody else');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM app.accounts WHERE status = 'archived'}),
	$n - 2, 'the application rows of the others moved with them');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE h.event = 'archive_due'), count(DISTINCT h.user_id)
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 'b' AND h.event = 'archive_due'}),
	($n - 2) . '|' . ($n - 2), 'one archive history row per archived user');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.subject IN ('u-7', 'u-150') AND o.message = 'archived'}),
	'0', 'no message for the failing users');

# Fixed: the next retry archives them.
$node->safe_psql('postgres', q{
	DELETE FROM app.fail;
	SELECT lifecycle_travel('61 seconds');
	SELECT lifecycle_tick();
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'b' AND state = 'archived'
	   AND retries = 0 AND last_error IS NULL AND retry_at IS NULL}),
	$n, 'the retry archived them and cleared their errors');

# Erase, clean batch: one subtransaction for the whole batch.
$node->safe_psql('postgres', q{
	INSERT INTO app.fail VALUES ('u-137');
	SELECT lifecycle_travel('100 days 2 minutes');
});
my $calls0 = $node->safe_psql('postgres', q{SELECT last_value FROM app.calls});
$node->safe_psql('postgres', q{SELECT lifecycle_tick()});
is($node->safe_psql('postgres', q{
	SELECT state, count(*) FROM lifecycle.users WHERE tenant = 'b'
	 GROUP BY state ORDER BY state}),
	"archived|1\nerased|" . ($n - 1), 'all but the failing user erased');
is($node->safe_psql('postgres', q{
	SELECT subject || ':' || retries || ':' || (last_error LIKE '%refuses to erase u-137')
	  FROM lifecycle.users WHERE tenant = 'b' AND state = 'archived'}),
	'u-137:1:true', 'the failing user stays due with its own error and its subject');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'b' AND state = 'erased'
	   AND (subject IS NOT NULL OR email IS NOT NULL OR attrs <> '{}'
			OR last_error IS NOT NULL OR retries > 0)}),
	'0', 'the others are erased: no personal data, no error');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ':' || count(DISTINCT user_id)
	  FROM lifecycle.erasures WHERE tenant = 'b'}),
	($n - 1) . ':' . ($n - 1), 'one evidence row per erased user');
is($node->safe_psql('postgres', q{SELECT string_agg(subject, ',') FROM app.accounts}),
	'u-137', 'the erase hook deleted the application rows of the erased users only');
# One failing user among 200: the group and then one half of each failing
# half again (200, 100, 50, 25, 13, 7, 4, 2, 1): at most 2 log2(200) + 1
# subtransactions, where one per user would be 200.
my $xids = $node->safe_psql('postgres', q{
	SELECT count(DISTINCT xmin::text) FROM lifecycle.erasures WHERE tenant = 'b'});
ok($xids >= 2 && $xids <= 17, "erasures written by few subtransactions ($xids)");
my $calls = $node->safe_psql('postgres', q{SELECT last_value FROM app.calls}) - $calls0;
ok($calls >= $n && $calls <= 3 * $n,
	"hooks of the failed groups were called again, bounded ($calls calls for $n users)");

# Fixed: the retry erases the last one; a clean batch is one subtransaction.
$node->safe_psql('postgres', q{
	DELETE FROM app.fail;
	SELECT lifecycle_travel('61 seconds');
	SELECT lifecycle_tick();
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.users WHERE tenant = 'b' AND state = 'erased'}),
	$n, 'the retry erased the last user');
is($node->safe_psql('postgres', q{SELECT count(*) FROM app.accounts}), '0',
	'every application row deleted by the hook');

# A clean batch of erasures by timer shares one subtransaction.
$node->safe_psql('postgres', qq{
	SELECT count(lifecycle_invite('c-' || i, 'c' || i || '\@example.com', 'c', 'batch'))
	  FROM generate_series(1, $n) i;
	SELECT count(lifecycle_register('c-' || i, 'c')) FROM generate_series(1, $n) i;
	SELECT count(lifecycle_complete('c-' || i, 'c')) FROM generate_series(1, $n) i;
	SELECT lifecycle_travel('10 days 1 minute');
	SELECT lifecycle_tick();
	SELECT lifecycle_travel('100 days 1 minute');
	SELECT lifecycle_tick();
});
is($node->safe_psql('postgres', q{
	SELECT count(*) || ':' || count(DISTINCT xmin::text)
	  FROM lifecycle.erasures WHERE tenant = 'c'}),
	"$n:1", 'a clean batch of erasures: one subtransaction for all');

$node->stop;
done_testing();
