# Seeded fuzzing of the SQL interface: the policy parser
# (lifecycle_define_policy with random, huge, unicode and escaped strings,
# extreme intervals, nested junk and wrong JSON types) and every function's
# arguments (random and huge strings, NULLs, unicode, escapes, extreme
# timestamps for lifecycle_hold's until, extreme intervals for
# lifecycle_travel), called as the superuser, an app and an admin role.
#
# Each case runs in a subtransaction (a plpgsql driver catches its error and
# records the SQLSTATE).  Passing means: no backend crash (the server stays
# up, no "terminated by signal" in the log), every error is one of the
# documented SQLSTATEs (22004, 22023, 42704, 55000, 42501), and the tables
# are consistent afterwards (no partial row: erased users without personal
# data and with exactly one evidence row, live users with a history, ...).
#
# Deterministic: FUZZ_SEED (default 20261126) seeds an LCG of our own, so a
# failure reproduces with the same seed; FUZZ_CASES (default 5000) cases.
use strict;
use warnings;
use utf8;
use Encode qw(encode_utf8);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{FUZZ_SEED} || 20261126;
my $ncases = $ENV{FUZZ_CASES} || 5000;
my $chunk = 250;

# --- a deterministic generator ----------------------------------------
my $state = $seed % 2147483647 || 1;
sub rnd
{
	my ($n) = @_;
	# Park-Miller minimal standard generator (exact in 64-bit integers).
	$state = ($state * 48271) % 2147483647;
	return $state % $n;
}
sub pick { return $_[rnd(scalar @_)]; }
sub chance { return rnd(1000) < $_[0] * 1000; }

my @unicode = ("Zürich", "日本語テキスト", "😀🙈", "שלום", "e\x{301}", "\x{200B}zero width",
	"\x{FEFF}bom", "Ω≈ç√∫", "\x{1F600}" x 40, "ǅ", "\x{10FFFF}");
my @escapes = ("'", "''", '"', "\\", "\\\\'", "%s%n%x", "\$\$", "\$1", "\t\n\r",
	"'; DROP TABLE lifecycle.users; --", "\") OR 1=1 --", "E'\\\\x41'", "\\u0041",
	"{}", "[]", "null", "NULL", "pg_catalog.now()", "lifecycle.users", "*", "?",
	"a\\.b", "<script>", "%", "_", "\x7f", "\x01\x02\x1b[31m");

sub rstr
{
	my $k = rnd(100);
	return undef if $k < 6;
	return '' if $k < 10;
	return pick(' ', '  ', "\t") if $k < 13;
	return pick(@unicode) if $k < 25;
	return pick(@escapes) if $k < 40;
	return 'x' x pick(63, 64, 100, 253, 254, 255, 256, 257, 1000, 1001, 8193, 100000)
	  if $k < 50;
	return pick(@unicode) x (1 + rnd(200)) if $k < 55;
	my $len = 1 + rnd(24);
	my $s = '';
	$s .= chr(32 + rnd(95)) for 1 .. $len;
	return $s;
}

sub rinterval
{
	return pick('178000000 years', '-178000000 years', '-1 days', '1 microsecond',
		'0', '00:00:00.000001', '199 years', '200 years', '2147483647 days',
		'-2147483648 days', '1 mon -30 days', '-1 mon 31 days', '30 days', '1 day',
		'1 hour', '12 hours', '3 years', '7999 years', '-60 years', '1 mon',
		'9223372036854 seconds', '-9223372036854 seconds', '2147483647 mons',
		(1 + rnd(400)) . ' days', (1 + rnd(100)) . ' hours', rnd(59) . ' minutes',
		'-' . (1 + rnd(30)) . ' days');
}

sub rtimestamp
{
	return pick(undef, 'infinity', '-infinity', '294276-12-31 23:59:59+00',
		'4713-01-01 00:00:00+00 BC', '1970-01-01 00:00:00+00', '9999-12-31 23:59:59+00',
		'2000-01-01 00:00:00+00', 'now', 'epoch');
}

sub rjson_value
{
	my ($depth) = @_;
	my $k = rnd(100);
	return undef if $k < 8;
	return JSON::PP::true if $k < 12;
	return rnd(2000000000) - 1000000000 if $k < 20;
	return 1e308 if $k < 22;
	return rinterval() if $k < 45;
	return rstr() // 'x' if $k < 60;
	return [] if $k < 63;
	return {} if $k < 66;
	if ($depth < 6 && $k < 85)
	{
		return [ map { rjson_value($depth + 1) } 1 .. rnd(4) ];
	}
	if ($depth < 6)
	{
		my %h;
		$h{ rstr() // 'k' } = rjson_value($depth + 1) for 1 .. rnd(4);
		return \%h;
	}
	return 'deep';
}

sub deep_junk
{
	my $d = 1 + rnd(300);
	return pick('[' x $d . ']' x $d, '{"a":' x $d . '1' . '}' x $d);
}

my @keys = qw(invite_reminders invite_expires_after dormant_after archive_after
  archive_reminders erase_after expired_erase_after touch_granularity
  history_retention channel hooks);
my @hooks = ('fz_hook', 'public.fz_hook', 'pg_catalog.textcat', 'no_such_fn',
	'a.b.c', '"weird""name"', 'public.', '.x', 'lifecycle_invite', 'fz_bad_hook',
	'fz_app_hook', 'pg_catalog.pg_terminate_backend', 'x' x 300, '');

sub rpolicy
{
	my $k = rnd(100);
	return undef if $k < 3;
	return deep_junk() if $k < 6;
	return encode_json(rjson_value(0) // 1) if $k < 12;
	my %def;
	for (1 .. rnd(6))
	{
		my $key = chance(0.1) ? (rstr() // 'junk') : pick(@keys);
		my $v;
		if ($key =~ /reminders$/)
		{
			$v = chance(0.7) ? [ map { rinterval() } 0 .. rnd(4) ] : rjson_value(0);
		}
		elsif ($key eq 'hooks')
		{
			$v = chance(0.8)
			  ? { map { (pick('archive', 'restore', 'erase', 'junk') => pick(@hooks, rstr())) }
				  1 .. rnd(3) }
			  : rjson_value(0);
		}
		elsif ($key eq 'channel')
		{
			$v = pick(undef, '', 'no_channel', rstr(), 42, []);
		}
		else
		{
			$v = chance(0.75) ? rinterval() : rjson_value(0);
		}
		$def{$key} = $v;
	}
	return JSON::PP->new->canonical->encode(\%def);
}

# SQL literals
sub lit
{
	my ($v, $type) = @_;
	return "NULL::$type" unless defined $v;
	(my $q = $v) =~ s/'/''/g;
	return "'$q'::$type";
}
sub t { return lit($_[0], 'text'); }

my @subjects = map { "fz-$_" } 1 .. 40;
my @tenants = ('default', 'ta', 'tb');
my @policies = ('default', 'fz_p1', 'fz_p2', 'fz_p3');
sub rsubject { return chance(0.8) ? pick(@subjects) : rstr(); }
sub rtenant { return chance(0.85) ? pick(@tenants) : rstr(); }

sub remail
{
	my ($s) = @_;
	return pick(($s // 'x') . '@example.com', 'a@b.co', rstr(), 'no-at-sign',
		'@example.com', 'a@b', 'a@@b.com', 'a@b..com', 'a b@c.com', 'x' x 250 . '@e.co',
		"ü\@exämple.com", 'a@b.c,d@e.f', '"q"@e.com', undef);
}

sub rattrs
{
	my $k = rnd(100);
	return undef if $k < 4;
	return '[]' if $k < 7;
	return '"scalar"' if $k < 9;
	return '{"big": "' . ('x' x 9000) . '"}' if $k < 12;
	return deep_junk() if $k < 14;
	my $v = rjson_value(0);
	$v = { v => $v } unless ref $v eq 'HASH';
	return JSON::PP->new->canonical->encode($v);
}

my $have_messages = 0;

# One case: [role (undef = superuser), sql, undo]
sub gen_case
{
	my $k = rnd(1000);
	my $who = pick(undef, undef, 'fz_app', 'fz_admin', 'fz_limited');
	my $s = rsubject();
	my $tn = rtenant();
	if ($k < 170)
	{
		my $name = chance(0.7) ? pick(@policies[ 1 .. 3 ]) : rstr();
		return [ pick(undef, 'fz_admin'),
			'SELECT lifecycle_define_policy(' . t($name) . ', ' . lit(rpolicy(), 'jsonb') . ')', 0 ];
	}
	if ($k < 330)
	{
		my $email = chance(0.8) && defined $s ? "$s\@example.com" : remail($s);
		my @args = (t($s), t($email), t($tn),
			t(chance(0.85) ? pick(@policies) : rstr()),
			t(chance(0.5) ? undef : pick('eu', 'us', rstr())),
			lit(chance(0.6) ? '{"name": "fuzz"}' : rattrs(), 'jsonb'));
		# Named and positional forms, some with defaults left out.
		my $n = chance(0.3) ? 2 + rnd(5) : 6;
		return [ $who, 'SELECT lifecycle_invite(' . join(', ', @args[ 0 .. $n - 1 ]) . ')', 0 ];
	}
	if ($k < 560)
	{
		my $f = pick(qw(register touch complete restore archive touch touch));
		return [ $who, "SELECT lifecycle_$f(" . t($s) . ', ' . t($tn) . ')', 0 ];
	}
	if ($k < 610)
	{
		return [ $who, 'SELECT lifecycle_erase(' . t($s) . ', ' . t($tn) . ', '
			  . t(chance(0.7) ? 'fuzz request' : rstr()) . ')', 0 ];
	}
	if ($k < 680)
	{
		my $until = rtimestamp();
		my $u = chance(0.4) ? 'NULL' :
		  chance(0.5) && defined $until ? lit($until, 'timestamptz')
		  : 'lifecycle_now() + '
		  . lit(pick('1 microsecond', '-1 day', '1 day', '199 years', '7000 years', '0'), 'interval');
		return [ $who, 'SELECT lifecycle_hold(' . t($s) . ', ' . t($tn) . ', '
			  . t(chance(0.8) ? 'case' : rstr()) . ", $u)", 0 ];
	}
	if ($k < 720)
	{
		return [ $who, 'SELECT lifecycle_release(' . t($s) . ', ' . t($tn) . ')', 0 ];
	}
	if ($k < 770)
	{
		my $f = pick('SELECT * FROM lifecycle_status(%s, %s)',
			'SELECT count(*) FROM lifecycle_history(%s, %s)');
		return [ pick($who, 'fz_auditor'), sprintf($f, t($s), t($tn)), 0 ];
	}
	if ($k < 790)
	{
		return [ pick($who, 'fz_auditor'),
			'SELECT lifecycle_graph(' . t(chance(0.7) ? pick(@policies) : rstr()) . ')', 0 ];
	}
	if ($k < 850)
	{
		# Extreme travels are undone; moderate ones are kept, with a tick.
		my $iv = rinterval();
		my $undo = $iv =~ /years|mons|2147483647|922337/ ? 1 : 0;
		return [ pick(undef, 'fz_admin', 'fz_app'),
			'SELECT lifecycle_travel(' . lit($iv, 'interval') . '); SELECT lifecycle_tick()', $undo ];
	}
	if ($k < 880)
	{
		my $m = pick('NULL', -1, 0, 1, 5, 2147483647, -2147483648);
		return [ pick(undef, 'fz_admin', 'fz_app'), "SELECT lifecycle_tick((${m})::int)", 0 ];
	}
	if ($k < 920)
	{
		my $f = pick('grant', 'grant', 'revoke');
		my $role = pick('fz_other', 'fz_other', 'no_such_role', rstr());
		return [ pick(undef, 'fz_admin', 'fz_limited_admin', 'fz_app'),
			"SELECT lifecycle_${f}_tenant(" . lit($role, 'name') . ', ' . t($tn) . ')', 0 ];
	}
	if ($k < 935)
	{
		return [ pick(undef, 'fz_admin', 'fz_app'), 'SELECT lifecycle_prune_history()', 0 ];
	}
	if ($k < 960)
	{
		return [ pick(undef, 'fz_admin'), 'SELECT * FROM lifecycle._machine_step('
			  . t(pick('invited', 'active', 'none', 'erased', rstr())) . ', '
			  . t(pick('invite', 'touch', 'erase', 'archive_due', rstr())) . ', '
			  . pick('true', 'false', 'NULL') . ', ' . t(pick(@policies, rstr())) . ')', 0 ];
	}
	if ($k < 985)
	{
		return [ pick(undef, 'fz_admin', 'fz_auditor'), 'SELECT count(*) FROM '
			  . pick(map { "lifecycle.$_" } qw(retention_report violations overdue holds
				  erasures worker_stats tenant_grants)), 0 ];
	}
	# Messages functions, when the install has them.
	return gen_case() unless $have_messages;
	return [ pick(undef, 'fz_admin'), 'SELECT lifecycle_add_channel('
		  . t(pick('fzc', rstr())) . ', ' . t(pick('webhook', 'smtp', rstr())) . ', '
		  . t(pick('https://example.com/hook', 'http://127.0.0.1:1/x', 'smtp://mail.example.com',
			  'file:///etc/passwd', 'gopher://x', rstr())) . ', '
		  . t(pick(undef, 'whsec_' . 'QUJD' x 8, 'whsec_!!', rstr())) . ', '
		  . lit(pick('{}', rattrs()), 'jsonb') . ')', 0 ]
	  if chance(0.6);
	return [ pick(undef, 'fz_admin'), 'SELECT lifecycle._webhook_signature('
		  . t(pick('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_!!', 'nope', rstr()))
		  . ', ' . t(rstr()) . ', '
		  . pick('NULL', 0, -1, 1674087231, '9223372036854775807', '(-9223372036854775808)')
		  . '::bigint, ' . t(rstr()) . ')', 0 ]
	  if chance(0.5);
	return [ pick(undef, 'fz_admin'),
		'SELECT lifecycle_retry_dead(' . t(pick(undef, 'fzc', rstr())) . ')', 0 ];
}

# --- the cluster ----------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
lifecycle.allow_time_travel = on
lifecycle.allow_private_targets = on
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION lifecycle;
	CREATE ROLE fz_app IN ROLE lifecycle_app;
	CREATE ROLE fz_admin IN ROLE lifecycle_admin;
	CREATE ROLE fz_auditor IN ROLE lifecycle_auditor;
	CREATE ROLE fz_limited IN ROLE lifecycle_app;
	CREATE ROLE fz_limited_admin IN ROLE lifecycle_admin;
	CREATE ROLE fz_other IN ROLE lifecycle_app;   -- the one grants are fuzzed on
	SELECT lifecycle_grant_tenant('fz_limited', 'ta');
	SELECT lifecycle_grant_tenant('fz_limited_admin', 'tb');
	CREATE FUNCTION fz_hook(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ SELECT NULL $$;
	CREATE FUNCTION fz_bad_hook(subject text, tenant text) RETURNS void
	LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hook says no'; END $$;
	CREATE FUNCTION fz_app_hook(subject text, tenant text) RETURNS void
	LANGUAGE sql AS $$ SELECT NULL $$;
	ALTER FUNCTION fz_app_hook(text, text) OWNER TO fz_admin;
	CREATE TABLE fz_cases (id int PRIMARY KEY, who text, q text, undo boolean,
						   result text);
	-- One case in a subtransaction, as a role, optionally undone.
	CREATE FUNCTION fz_exec(who text, q text, undo boolean) RETURNS text
	LANGUAGE plpgsql AS $$
	BEGIN
		IF who IS NOT NULL THEN
			EXECUTE pg_catalog.format('SET ROLE %I', who);
		END IF;
		EXECUTE q;
		RESET ROLE;
		IF undo THEN
			RAISE EXCEPTION USING ERRCODE = 'FZUND';
		END IF;
		RETURN 'ok';
	EXCEPTION
		WHEN SQLSTATE 'FZUND' THEN RETURN 'ok';
		WHEN OTHERS THEN RETURN SQLSTATE || ' ' || SQLERRM;
	END
	$$;
	CREATE FUNCTION fz_run(lo int, hi int) RETURNS int
	LANGUAGE plpgsql AS $$
	DECLARE
		r record;
		n int := 0;
	BEGIN
		FOR r IN SELECT * FROM fz_cases WHERE id BETWEEN lo AND hi ORDER BY id LOOP
			UPDATE fz_cases SET result = fz_exec(r.who, r.q, r.undo) WHERE id = r.id;
			n := n + 1;
		END LOOP;
		RETURN n;
	END
	$$;
});

$have_messages = $node->safe_psql('postgres', q{
	SELECT count(*) = 3 FROM pg_proc
	 WHERE proname IN ('lifecycle_add_channel', 'lifecycle_retry_dead',
					   '_webhook_signature')}) eq 't';
note("messages functions: " . ($have_messages ? 'fuzzed' : 'not installed'));

# Generate and load every case up front (dollar quoting with a tag the
# generator never produces).
my @cases = map { gen_case() } 1 .. $ncases;
for (my $lo = 0; $lo < $ncases; $lo += $chunk)
{
	my $sql = "INSERT INTO fz_cases (id, who, q, undo) VALUES\n";
	my @rows;
	for my $i ($lo .. ($lo + $chunk - 1 < $ncases ? $lo + $chunk - 1 : $ncases - 1))
	{
		my ($who, $q, $undo) = @{ $cases[$i] };
		die "case $i contains the quote tag" if $q =~ /\$FZQ\$/;
		push @rows, sprintf("(%d, %s, \$FZQ\$%s\$FZQ\$, %s)", $i + 1,
			defined $who ? "'$who'" : 'NULL', $q, $undo ? 'true' : 'false');
	}
	$node->safe_psql('postgres', encode_utf8($sql . join(",\n", @rows)));
}

# Run them chunk by chunk, each chunk one transaction; a crash is located
# by replaying its chunk one case per transaction.
my $crashed = 0;
for (my $lo = 1; $lo <= $ncases; $lo += $chunk)
{
	my $hi = $lo + $chunk - 1;
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT fz_run($lo, $hi)");
	next if $rc == 0;
	$crashed = 1;
	diag("chunk $lo..$hi failed: $err");
	$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
	for my $id ($lo .. $hi)
	{
		my ($rc1, $o1, $e1) = $node->psql('postgres', "SELECT fz_run($id, $id)");
		if ($rc1 != 0)
		{
			diag("case $id: " . $cases[ $id - 1 ][1] . "\n  -> $e1");
			$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
			last;
		}
	}
}
ok(!$crashed, 'no chunk of cases lost its backend');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|TRAP:|PANIC:/, 'no backend crash in the server log');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');

is($node->safe_psql('postgres', 'SELECT count(*) FROM fz_cases WHERE result IS NULL'),
	'0', 'every case ran');

# Every error carries a documented SQLSTATE.
my $states = $node->safe_psql('postgres', q{
	SELECT split_part(result, ' ', 1) AS st, count(*)
	  FROM fz_cases GROUP BY 1 ORDER BY 1});
note("outcomes (sqlstate|count):\n$states");
my $undocumented = $node->safe_psql('postgres', q{
	SELECT string_agg(id || ': ' || left(q, 300) || E'\n   -> ' || left(result, 300), E'\n'
					  ORDER BY id)
	  FROM (SELECT * FROM fz_cases
			 WHERE split_part(result, ' ', 1) NOT IN
				   ('ok', '22004', '22023', '42704', '55000', '42501')
			   -- the application's own failing hook, called by an
			   -- application call, raises its own error
			   AND result <> 'P0001 hook says no'
			 ORDER BY id LIMIT 20) x});
is($undocumented, '', 'every error is one of 22004, 22023, 42704, 55000, 42501');

# The fuzz did reach deep: successes and each kind of refusal.
my $kinds = $node->safe_psql('postgres', q{
	SELECT count(DISTINCT split_part(result, ' ', 1)) FROM fz_cases});
cmp_ok($kinds, '>=', 6, 'successes and five kinds of refusal were exercised');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM fz_cases
	WHERE result = 'ok' AND q LIKE 'SELECT lifecycle_define_policy%'}), '>', 0,
	'some random policies were valid');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM lifecycle.users}), '>', 10,
	'subjects were created');

# No partial row: the tables agree with each other.
my %inv = (
	'erased users keep no personal data' => q{
		SELECT count(*) FROM lifecycle.users WHERE state = 'erased'
		   AND (subject IS NOT NULL OR email IS NOT NULL OR attrs <> '{}'
				OR hold_reason IS NOT NULL)},
	'each erased user has exactly one evidence row' => q{
		SELECT count(*) FROM lifecycle.users u WHERE state = 'erased'
		   AND (SELECT count(*) FROM lifecycle.erasures e WHERE e.user_id = u.id) <> 1},
	'each evidence row is of an erased user' => q{
		SELECT count(*) FROM lifecycle.erasures e LEFT JOIN lifecycle.users u
		    ON u.id = e.user_id WHERE u.state IS DISTINCT FROM 'erased'},
	'live users have subject, e-mail and a history' => q{
		SELECT count(*) FROM lifecycle.users u WHERE state <> 'erased'
		   AND (subject IS NULL OR email IS NULL OR NOT EXISTS (
				SELECT 1 FROM lifecycle.history h WHERE h.user_id = u.id))},
	'messages of erased users are scrubbed and not pending' => q{
		SELECT count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
		 WHERE u.state = 'erased'
		   AND (o.payload <> '{}' OR o.status IN ('pending', 'unrouted', 'blocked'))},
	# The invite message lives until outbox_retention has passed (then
	# the tick prunes it); the history row stays.
	'every user has an invite message and history row' => q{
		SELECT count(*) FROM lifecycle.users u
		  JOIN lifecycle.policies p ON (p.name, p.version) = (u.policy, u.policy_version)
		 WHERE u.state <> 'erased'
		   AND (NOT EXISTS (SELECT 1 FROM lifecycle.history h
							 WHERE h.user_id = u.id AND h.event = 'invite')
				OR (NOT EXISTS (SELECT 1 FROM lifecycle.outbox o
								 WHERE o.user_id = u.id AND o.message = 'invite')
					AND (SELECT max(h.at) FROM lifecycle.history h
						  WHERE h.user_id = u.id AND h.event = 'invite')
						> lifecycle_now() - (p.definition->>'outbox_retention')::interval))},
	'history and outbox rows belong to users' => q{
		SELECT (SELECT count(*) FROM lifecycle.history h
				 WHERE NOT EXISTS (SELECT 1 FROM lifecycle.users u WHERE u.id = h.user_id))
			 + (SELECT count(*) FROM lifecycle.outbox o
				 WHERE NOT EXISTS (SELECT 1 FROM lifecycle.users u WHERE u.id = o.user_id))},
	'users run existing policy versions' => q{
		SELECT count(*) FROM lifecycle.users u WHERE NOT EXISTS (
			SELECT 1 FROM lifecycle.policies p
			 WHERE p.name = u.policy AND p.version = u.policy_version)},
	'policy versions are 1..n without gaps' => q{
		SELECT count(*) FROM (SELECT name, max(version) m, count(*) c
								FROM lifecycle.policies GROUP BY name) x WHERE m <> c},
	'stored values respect the limits' => q{
		SELECT count(*) FROM lifecycle.users
		 WHERE octet_length(subject) > 256 OR octet_length(tenant) > 63
			OR octet_length(email) > 254 OR octet_length(region) > 63
			OR btrim(subject) = '' OR btrim(tenant) = '' OR jsonb_typeof(attrs) <> 'object'},
	'held users have no timer but their hold lapse' => q{
		SELECT count(*) FROM lifecycle.users WHERE held
		   AND next_event IS DISTINCT FROM 'hold_lapse' AND next_event IS NOT NULL},
	'the clock stays in range' => q{
		SELECT count(*) FROM (SELECT lifecycle_now() AS n) x
		 WHERE n < '1970-01-01' OR n >= '10001-01-01'},
	'every limited role keeps a tenant' => q{
		SELECT count(*) FROM (VALUES ('fz_limited'), ('fz_limited_admin')) r(n)
		 WHERE NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants g WHERE g.role_name = r.n)},
);
for my $name (sort keys %inv)
{
	is($node->safe_psql('postgres', $inv{$name}), '0', $name);
}

# Roles limited to a tenant acted on no other (history.actor is the role).
is($node->safe_psql('postgres', q{
	SELECT string_agg(h.actor || ' ' || h.event || ' ' || u.tenant || ' ' || coalesce(u.subject, '-'), E'\n')
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE (h.actor = 'fz_limited' AND u.tenant <> 'ta')
		OR (h.actor = 'fz_limited_admin' AND u.tenant <> 'tb')}), '',
	'tenant-limited roles changed nothing outside their tenant');
cmp_ok($node->safe_psql('postgres', q{
	SELECT count(*) FROM lifecycle.history WHERE actor = 'fz_limited'}), '>', 0,
	'the tenant-limited app did act in its own tenant');

$node->stop;
done_testing();
