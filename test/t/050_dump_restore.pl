# pg_dump round trip: every table holding user data or configuration is an
# extension config table, so a dump of a database with users in every
# state, history, outbox, channels, a second policy version, erasure
# evidence, tenant grants and a travelled clock restores into a new
# database with the same rows, and the restored extension keeps working
# (status, timers, hooks, erasure, new versions, new ids).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'src'
lifecycle.enabled = off
lifecycle.allow_time_travel = on
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');

$node->safe_psql('src', q{
	CREATE EXTENSION lifecycle;
	CREATE SCHEMA app;
	CREATE TABLE app.accounts (subject text PRIMARY KEY, status text NOT NULL DEFAULT 'live');
	CREATE FUNCTION app.on_archive(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ UPDATE app.accounts a SET status = 'archived' WHERE a.subject = $1 $$;
	CREATE FUNCTION app.on_erase(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ DELETE FROM app.accounts a WHERE a.subject = $1 $$;
	SELECT lifecycle_add_channel('hooks', 'webhook', 'https://hooks.example.com/lc',
		'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
	SELECT lifecycle_define_policy('p', '{"dormant_after": "20 days",
		"hooks": {"archive": "app.on_archive", "erase": "app.on_erase"}}');
	INSERT INTO lifecycle.tenant_grants VALUES ('lifecycle_auditor', 'acme');
	INSERT INTO app.accounts SELECT 'u' || i FROM generate_series(1, 12) i;
	-- v1 users, then more on v2 after a stretch of time.
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '@example.com', 'acme', 'p',
		'eu', jsonb_build_object('n', i))) FROM generate_series(1, 6) i;
	SELECT count(lifecycle_register('u' || i, 'acme')) FROM generate_series(1, 5) i;
	SELECT lifecycle_travel('21 days');
	SELECT lifecycle_tick();
	SELECT lifecycle_define_policy('p', '{"dormant_after": "40 days", "channel": "hooks",
		"hooks": {"archive": "app.on_archive", "erase": "app.on_erase"}}');
	SELECT count(lifecycle_invite('u' || i, 'u' || i || '@example.com', 'acme', 'p'))
	  FROM generate_series(7, 12) i;
	SELECT count(lifecycle_register('u' || i, 'acme')) FROM generate_series(7, 10) i;
	SELECT lifecycle_complete('u7', 'acme');
	SELECT lifecycle_archive('u8', 'acme');
	SELECT lifecycle_hold('u9', 'acme', 'litigation');
	SELECT lifecycle_erase('u10', 'acme', 'request 10');
	SELECT lifecycle_invite('d1', 'd1@example.com');
});

my @tables = qw(policies channels users history outbox erasures clock tenant_grants);

# Rows of a table as one text, in a stable order.  The default policy's
# first version is written by CREATE EXTENSION (not dumped), so its
# created_at differs: policies are compared without it.
sub rows
{
	my ($db, $table) = @_;
	my $cols = $table eq 'policies' ? 'name, version, definition, created_by' : '*';
	return $node->safe_psql($db,
		"SELECT coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')
		   FROM (SELECT $cols FROM lifecycle.$table) r");
}

my %before;
$before{$_} = rows('src', $_) for @tables;
my $states = $node->safe_psql('src',
	q{SELECT string_agg(DISTINCT state::text, ',' ORDER BY state::text) FROM lifecycle.users});
is($states, 'active,archived,completed,dormant,erased,expired,invited',
	'the source has users in many states');
cmp_ok(length($before{$_}), '>', 0, "source table $_ has rows")
  for qw(policies channels users history outbox erasures clock tenant_grants);

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ],
	'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into a new database');

for my $t (@tables)
{
	is(rows('dst', $t), $before{$t}, "lifecycle.$t restored with the same rows");
}
is($node->safe_psql('dst', 'SELECT count(*) FROM app.accounts'),
	$node->safe_psql('src', 'SELECT count(*) FROM app.accounts'),
	'the application table came along');
is($node->safe_psql('dst',
		q{SELECT count(*) FROM lifecycle.policies WHERE name = 'default'}),
	'1', 'the default policy is there once');

# The restored extension works: same clock, same status ...
is($node->safe_psql('dst', 'SELECT offset_by FROM lifecycle.clock'),
	$node->safe_psql('src', 'SELECT offset_by FROM lifecycle.clock'),
	'the clock offset survives');
is($node->safe_psql('dst',
		q{SELECT state || '|' || policy || '|' || policy_version || '|' || held
		    FROM lifecycle_status('u9', 'acme')}),
	'active|p|2|true', 'lifecycle_status after restore');

is($node->safe_psql('dst',
		q{SELECT string_agg(subject || ':' || policy_version, ',' ORDER BY subject)
		    FROM lifecycle.users WHERE subject IN ('u1', 'u7')}),
	'u1:1,u7:2', 'users keep their policy versions');

# ... timers fire on the restored schedule, with the restored hooks ...
$node->safe_psql('dst', q{SELECT lifecycle_travel('41 days')});
my $ticked = $node->safe_psql('dst', 'SELECT lifecycle_tick()');
cmp_ok($ticked, '>', 0, 'lifecycle_tick advances restored users');
is($node->safe_psql('dst',
		q{SELECT string_agg(subject || ':' || state, ',' ORDER BY subject)
		    FROM lifecycle.users WHERE subject IN ('u1', 'u7', 'u11', 'u12', 'u9')}),
	'u1:archived,u11:expired,u12:expired,u7:archived,u9:active',
	'v1 and v2 users advance on their own versions; the held user does not');
is($node->safe_psql('dst',
		q{SELECT string_agg(subject || ':' || status, ',' ORDER BY subject)
		    FROM app.accounts WHERE subject IN ('u1', 'u7')}),
	'u1:archived,u7:archived', 'the restored archive hook ran');

# ... erasure, new invitations (new ids from the restored sequences) and
# new policy versions work.
$node->safe_psql('dst', q{SELECT lifecycle_release('u9', 'acme')});
cmp_ok($node->safe_psql('dst', q{SELECT lifecycle_erase('u9', 'acme')}), '>',
	$node->safe_psql('src', 'SELECT max(id) FROM lifecycle.erasures'),
	'lifecycle_erase writes a new evidence row');
is($node->safe_psql('dst', q{SELECT count(*) FROM app.accounts WHERE subject = 'u9'}),
	'0', 'the restored erase hook ran');
cmp_ok($node->safe_psql('dst',
		q{SELECT lifecycle_invite('new1', 'new1@example.com', 'acme', 'p')}),
	'>', $node->safe_psql('src', 'SELECT max(id) FROM lifecycle.users'),
	'a new invitation gets a new id');
is($node->safe_psql('dst', q{SELECT policy_version FROM lifecycle_status('new1', 'acme')}),
	'2', 'new invitations take the latest restored version');
is($node->safe_psql('dst', q{SELECT lifecycle_define_policy('p', '{}')}),
	'3', 'the next policy version follows the restored ones');
is($node->safe_psql('dst',
		q{SELECT count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
		   WHERE u.subject = 'new1' AND o.status = 'pending' AND o.channel = 'hooks'}),
	'1', 'the restored channel routes new messages');

# The source is untouched by all of this.
is(rows('src', 'users'), $before{users}, 'the source database is unchanged');

# lifecycle_travel() is refused once lifecycle.allow_time_travel is off
# (a SIGHUP setting: no session may turn it back on for itself).
$node->append_conf('postgresql.conf', 'lifecycle.allow_time_travel = off');
$node->reload;
$node->poll_query_until('dst',
	q{SELECT current_setting('lifecycle.allow_time_travel') = 'off'})
  or die 'the reload did not take';
my ($ret, $out, $err) = $node->psql('dst',
	qq{\\set VERBOSITY verbose\nSELECT lifecycle_travel('1 day')});
like($err, qr/ERROR:  55000: time travel is disabled/,
	'lifecycle_travel refused (55000) when time travel is off');
($ret, $out, $err) = $node->psql('dst',
	qq{\\set VERBOSITY verbose\nSET lifecycle.allow_time_travel = on});
like($err, qr/ERROR:  55P02: parameter "lifecycle.allow_time_travel" cannot be changed now/,
	'a session cannot turn time travel on');
is($node->safe_psql('dst', 'SELECT offset_by FROM lifecycle.clock'),
	$node->safe_psql('src', q{SELECT offset_by + interval '41 days' FROM lifecycle.clock}),
	'the clock did not move');

$node->stop;
done_testing();
