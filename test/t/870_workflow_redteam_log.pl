# Red team, custom workflows under the real scheduler (issue 18): a custom
# workflow's hooks run as the user workflow's do, sandboxed (as their
# function's owner, SECURITY_RESTRICTED_OPERATION, their settings undone
# at return) in the worker; a hook that raises leaves its instance due
# with backoff and its own error in lifecycle.overdue, not in the server
# log; nothing in the definition (texts, templates, hints, description:
# SQL an attacker would like run) is ever executed; subject-wide erasure
# of subjects with several instances through the worker's transitions.
# Then the server log (log_statement = none, log_min_messages = debug1,
# PostgreSQL's quotes of the caller's SQL not scanned, as in 610) holds no
# subject, e-mail address, attrs or data value, nor the hook's text.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('wf_redteam');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.allow_time_travel = on
lifecycle.max_sleep = '1s'
log_statement = none
log_min_messages = debug1
log_min_error_statement = panic
});
$node->start;
my $offset = -s $node->logfile;

my $evil = q{x'); DROP TABLE public.canary; --};
$node->safe_psql('postgres', qq{
	CREATE EXTENSION lifecycle;
	CREATE TABLE public.canary (i int);
	INSERT INTO public.canary VALUES (1);
	CREATE ROLE wf_owner LOGIN IN ROLE lifecycle_admin;
	CREATE SCHEMA wf AUTHORIZATION wf_owner;
	GRANT CREATE ON SCHEMA wf TO wf_owner;
});
# The definition: every free text is SQL.
my $def = qq{{"description": "$evil",
	"messages": {"opened": {"subject": "$evil", "text": "{{attrs.name}} $evil"}},
	"states": {"open": {"hint": "$evil",
		"timer": {"event": "close_due", "after": "10 days", "to": "closed",
				  "hook": "close", "message": "opened"}},
		"closed": {"timer": {"event": "purge", "after": "10 days", "from": "due",
				  "to": "erased"}}},
	"events": {"open_case": [{"from": ["none"], "to": "open", "message": "opened"}],
		"reopen": [{"from": ["open"], "effect": "refuse", "hint": "$evil"}]}}};
$def =~ s/'/''/g;
$node->safe_psql('postgres', "SELECT lifecycle_define_workflow('wf_case', '$def')");
# Hooks written by an admin who owns a schema: the close hook records who
# it runs as and what it may do, then changes settings; it raises for the
# subjects named bad-*, with their subject, e-mail and data in the text.
$node->safe_psql('postgres', q{
	SET SESSION AUTHORIZATION wf_owner;
	CREATE TABLE wf.log (subject text, what text, result text);
	CREATE FUNCTION wf.try(subject text, what text, sql text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		BEGIN
			EXECUTE sql;
			INSERT INTO wf.log VALUES (subject, what, '00000');
		EXCEPTION WHEN others THEN
			INSERT INTO wf.log VALUES (subject, what, SQLSTATE);
		END;
	END $$;
	CREATE FUNCTION wf.on_close(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		IF subject LIKE 'bad-%' THEN
			RAISE EXCEPTION 'will not close % <%> (%)', subject,
				subject || '@hook.example', 'secret-data-' || subject;
		END IF;
		INSERT INTO wf.log VALUES (subject, 'runs as', current_user);
		INSERT INTO wf.log VALUES (subject, 'search_path', pg_catalog.current_setting('search_path'));
		PERFORM wf.try(subject, 'SET ROLE', $q$SET ROLE lifecycle_admin$q$);
		PERFORM wf.try(subject, 'temp table', $q$CREATE TEMP TABLE wf_t (i int)$q$);
		PERFORM wf.try(subject, 'other tenant',
			$q$SELECT public.lifecycle_start('wf_case', 'x9', 'wf-other')$q$);
		PERFORM pg_catalog.set_config('search_path', 'wf, public', false);
		PERFORM pg_catalog.set_config('work_mem', '77kB', false);
	END $$;
	SELECT lifecycle_define_policy('wf_case', '{"hooks": {"close": "wf.on_close"}}');
	RESET SESSION AUTHORIZATION;
	SELECT lifecycle_grant_tenant('wf_owner', 'wf');
});
# Subjects with the user lifecycle and two cases each; two bad ones.
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_invite(s, s || '@scan.example', 'wf', 'default', 'eu',
			jsonb_build_object('name', 'Name of ' || s)))
	  FROM unnest(ARRAY['wf-good-1', 'wf-good-2', 'bad-1', 'bad-2']) s;
	SELECT count(lifecycle_register(s, 'wf'))
	  FROM unnest(ARRAY['wf-good-1', 'wf-good-2', 'bad-1', 'bad-2']) s;
	SELECT count(lifecycle_start('wf_case', s, 'wf', key => k,
			data => jsonb_build_object('case', 'case-data-' || s || k)))
	  FROM unnest(ARRAY['wf-good-1', 'wf-good-2', 'bad-1', 'bad-2']) s,
		   unnest(ARRAY['', 'second']) k;
});
my $worker_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle scheduler'};
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_q) w")
  or die 'no scheduler';
my $pid = $node->safe_psql('postgres', $worker_q);

$node->safe_psql('postgres', q{SELECT lifecycle_travel('11 days')});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 4 FROM lifecycle.users
	 WHERE tenant = 'wf' AND workflow = 'wf_case' AND state = 'closed'})
  or die 'the good cases were not closed';
$node->poll_query_until('postgres', q{
	SELECT count(*) = 4 FROM lifecycle.overdue
	 WHERE tenant = 'wf' AND retries > 0 AND next_event = 'close_due'})
  or die 'the failures were not recorded';

is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT what || '=' || result, ', ' ORDER BY what || '=' || result)
	  FROM wf.log}),
	'SET ROLE=42501, other tenant=42501, runs as=wf_owner, search_path=pg_catalog, pg_temp, temp table=42501',
	'the worker runs a custom workflow\'s hook as its owner, restricted, limited to its tenant');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT subject) FROM wf.log}),
	'2', 'the hook ran for both good subjects');
is($node->safe_psql('postgres', q{
	SELECT string_agg(state || ':' || (retry_at > lifecycle_now())::text || ':'
					  || (last_error LIKE 'will not close ' || subject || ' %')::text, ',')
	  FROM lifecycle.users WHERE tenant = 'wf' AND subject LIKE 'bad-%'
	   AND workflow = 'wf_case'}),
	'open:true:true,open:true:true,open:true:true,open:true:true',
	'a raising hook leaves its instance due, backing off, its own error kept on the row');
is($node->safe_psql('postgres', $worker_q), $pid, 'the scheduler kept running');
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.canary}), '1',
	'nothing in the definition ran as SQL');

# The refusal's hint is the definition's text, as data.
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT lifecycle_signal('wf_case', 'bad-1', 'reopen', 'wf')});
like($stderr, qr/HINT:  x'\); DROP TABLE public\.canary; --/, 'the hint is shown as text');

# Subject-wide erasure: each subject's user lifecycle and both cases; the
# bad ones too (their erase hook is not the failing one).
$node->safe_psql('postgres', q{
	SELECT count(lifecycle_erase(s, 'wf', 'request'))
	  FROM unnest(ARRAY['wf-good-1', 'wf-good-2', 'bad-1', 'bad-2']) s});
is($node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(*) FILTER (WHERE subject IS NULL AND email IS NULL
			AND data = '{}' AND attrs = '{}')
	  FROM lifecycle.users WHERE tenant = 'wf'}),
	'12/12', 'every instance of every subject erased');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.erasures WHERE tenant = 'wf'}),
	'12', 'one evidence row per instance');
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.canary}), '1',
	'the canary lives');
$node->stop;

# The log, without PostgreSQL's quotes of the caller's SQL.
my @scanned;
my $skip = 0;
for my $line (split /\n/, slurp_file($node->logfile, $offset))
{
	if ($line =~ /^\S.*?\b(STATEMENT|CONTEXT):  /) { $skip = 1; next; }
	if ($line =~ /^\t/ && $skip) { next; }
	$skip = 0;
	push @scanned, $line;
}
my $log = join("\n", @scanned);
like($log, qr/lifecycle transition of user \d+ failed/,
	'the log has the failures, by id');
my @values;
for my $s ('wf-good-1', 'wf-good-2', 'bad-1', 'bad-2')
{
	push @values, $s, "$s\@scan.example", "$s\@hook.example", "Name of $s",
	  "secret-data-$s", "case-data-$s", "case-data-${s}second";
}
push @values, 'will not close';
my @leaks = grep { index($log, $_) >= 0 } @values;
is(join(', ', @leaks), '', 'no subject, address, attrs, data or hook text in the log');
for my $v (@leaks[0 .. ($#leaks < 4 ? $#leaks : 4)])
{
	my ($line) = grep { index($_, $v) >= 0 } @scanned;
	diag("leak of $v: $line");
}
done_testing();
