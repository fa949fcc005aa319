# Property test of the workflow language (docs/WORKFLOWS.md): seeded
# random definitions (random graphs, and random mutations of the built-in
# user and dsar definitions) go through lifecycle._workflow_bounds().
#
# Properties:
# - the validator never crashes the backend and refuses only with 22023;
# - every accepted definition satisfies the proofs, checked again here by
#   an independent implementation in PL/pgSQL over the JSON itself: every
#   state reachable from the one start event, every state's chain of timers
#   ends in erased (and is the path shown), every reminder inside its
#   window at sampled start dates;
# - each bound is at least the length of its chain of timers for every
#   sampled start date, with PostgreSQL's own timestamptz + interval;
# - compiling does not leak: a second pass over the same cases in the
#   same backend leaves the backend's memory where the first left it.
#
# Deterministic: WF_SEED (default 20261207) seeds the generator, printed so
# that a failure reproduces; WF_CASES (default 600) cases.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{WF_SEED} || 20261207;
my $ncases = $ENV{WF_CASES} || 600;
diag("WF_SEED=$seed WF_CASES=$ncases");

my $state = $seed % 2147483647 || 1;
sub rnd
{
	my ($n) = @_;
	$state = ($state * 48271) % 2147483647;
	return $state % $n;
}
sub pick { return $_[ rnd(scalar @_) ]; }
sub chance { return rnd(1000) < $_[0] * 1000; }

my $json = JSON::PP->new->canonical->ascii->allow_nonref;

sub slurp_json
{
	my ($f) = @_;
	open my $fh, '<', $f or die "$f: $!";
	local $/;
	my $t = <$fh>;
	close $fh;
	return decode_json($t);
}
my @builtins = (slurp_json('sql/workflows/user.json'), slurp_json('sql/workflows/dsar.json'));

sub rinterval
{
	return pick('1 day', '3 days', '12 hours', '1 mon', '2 mons', '1 year',
		'30 days', '1 mon 2 days', '90 minutes', '14 days', '2 years', '7 days')
	  if chance(0.95);
	return pick('0 days', '-1 day', 'soon', '1 mon -40 days', '300 years', '');
}

sub roffset { return pick('1 day', '2 days', '7 days', '12 hours', '30 days', '1 mon', '3 days'); }

sub rjunk
{
	return pick(undef, 0, 1, -1, 3.5, '', 'x', 'none', 'erased', 'hold', 'Bad Name',
		'a' x 64, [], {}, [1, 2], { a => 1 }, JSON::PP::true, '1 day', '0 days',
		"\x{e9}t\x{e9}", 'started', 'touch', 'refuse');
}

# A random graph: states s1..sn, timers mostly forward (so that many are
# accepted), a start event into s1 and call events between states.
sub rgraph
{
	my $n = 1 + rnd(6);
	my @states = map { "s$_" } 1 .. $n;
	my %params;
	for my $i (1 .. rnd(4))
	{
		$params{"p$i"} = chance(0.7) ? rinterval() : [ map { roffset() } 1 .. rnd(3) ];
	}
	my @ivparams = grep { !ref $params{$_} } sort keys %params;
	my @lsparams = grep { ref $params{$_} } sort keys %params;
	my %def = (params => \%params, states => {}, events => {},
		messages => { m1 => {}, m2 => { subject => 'S {{state}}', text => 'T {{deadline_at}}' } });
	for my $i (1 .. $n)
	{
		my @ahead = (@states[ $i .. $n - 1 ], 'erased');
		my $after = chance(0.3) && @ivparams ? pick(@ivparams) : rinterval();
		$after = [ $after, chance(0.5) && @ivparams ? pick(@ivparams) : rinterval() ] if chance(0.2);
		my %timer = (
			event => chance(0.8) ? "t$i" : pick('t1', 't2', 'lapse'),
			after => $after,
			to => chance(0.9) ? pick(@ahead) : pick(@states, 'erased'));
		$timer{from} = pick('entered', 'due', 'last_seen', 'started') if chance(0.6);
		$timer{message} = pick('m1', 'm2') if chance(0.3);
		$timer{hook} = pick('h1', 'erase') if chance(0.2);
		$timer{deadline} = pick('d1', 'erase', 'respond') if chance(0.2);
		if (chance(0.35))
		{
			my %r = (event => "r$i");
			my $dir = pick('before', 'after');
			$r{$dir} = chance(0.3) && @lsparams ? pick(@lsparams) : [ map { roffset() } 1 .. 1 + rnd(3) ];
			$r{message} = 'm1' if chance(0.5);
			$timer{reminders} = \%r;
		}
		$def{states}{"s$i"} = { timer => \%timer };
		$def{states}{"s$i"}{hint} = "Hint $i" if chance(0.2);
	}
	$def{events}{start} = [ { from => ['none'], to => 's1', message => 'm2' } ];
	for my $e (1 .. rnd(4))
	{
		my @edges;
		my %used;
		for (1 .. 1 + rnd(3))
		{
			my @from = grep { !$used{$_} && chance(0.4) } @states;
			next unless @from;
			$used{$_} = 1 for @from;
			my %edge = (from => \@from);
			if (chance(0.6)) { $edge{to} = pick(@states, 'erased'); }
			else
			{
				$edge{effect} = pick('touch', 'noop', 'refuse');
				$edge{hint} = 'No.' if $edge{effect} eq 'refuse';
			}
			$edge{role} = 'admin' if chance(0.1);
			$edge{hook} = 'h2' if $edge{to} && chance(0.2);
			push @edges, \%edge;
		}
		$def{events}{"e$e"} = \@edges if @edges;
	}
	return \%def;
}

# A random change somewhere in a document.
sub mutate
{
	my ($doc) = @_;
	my @paths;
	my $walk;
	$walk = sub {
		my ($v, $p) = @_;
		push @paths, $p;
		if (ref $v eq 'HASH') { $walk->($v->{$_}, [ @$p, $_ ]) for sort keys %$v; }
		elsif (ref $v eq 'ARRAY') { $walk->($v->[$_], [ @$p, $_ ]) for 0 .. $#$v; }
	};
	$walk->($doc, []);
	my $p = pick(@paths[ 1 .. $#paths ]);
	return $doc unless $p;
	my $parent = $doc;
	$parent = ref $parent eq 'HASH' ? $parent->{$_} : $parent->[$_] for @$p[ 0 .. $#$p - 1 ];
	my $k = $p->[-1];
	my $op = rnd(4);
	if (ref $parent eq 'HASH')
	{
		if ($op == 0) { delete $parent->{$k}; }
		elsif ($op == 1) { $parent->{ pick('x', 'to', 'from', 'timer', 'effect', 'after', 'none') } = rjunk(); }
		else { $parent->{$k} = rjunk(); }
	}
	else
	{
		if ($op == 0) { splice @$parent, $k, 1; }
		elsif ($op == 1) { push @$parent, $parent->[$k]; }
		else { $parent->[$k] = rjunk(); }
	}
	return $doc;
}

sub gen_case
{
	my $k = rnd(100);
	return rgraph() if $k < 55;
	my $doc = decode_json(encode_json(pick(@builtins)));
	$doc = mutate($doc) for 1 .. 1 + rnd(3);
	return $doc;
}

my $node = PostgreSQL::Test::Cluster->new('wfprop');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION lifecycle;
CREATE TABLE wf_cases (id int PRIMARY KEY, def jsonb, result text);

-- The checks, written against the JSON (not the compiled graph).
CREATE FUNCTION wf_duration(def jsonb, after jsonb, t timestamptz) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	term text;
BEGIN
	FOR term IN SELECT * FROM jsonb_array_elements_text(
		CASE WHEN jsonb_typeof(after) = 'array' THEN after ELSE jsonb_build_array(after) END)
	LOOP
		t := t + COALESCE(def -> 'params' ->> term, term)::interval;
	END LOOP;
	RETURN t;
END
$$;

CREATE FUNCTION wf_check(def jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	b record;
	n_bounds int := 0;
	reached text[];
	grew boolean;
	e record;
	st text;
	x text;
	timer jsonb;
	path text[];
	steps int;
	s0 timestamptz;
	t timestamptz;
	starts timestamptz[] := ARRAY['2000-01-31', '2001-02-28', '2004-02-29',
		'2003-12-31', '2095-07-31', '2099-03-01', '2100-01-31']::timestamptz[];
	offs jsonb;
	o text;
	deadline timestamptz;
	at timestamptz;
	n_start int;
BEGIN
	BEGIN
		PERFORM count(*) FROM lifecycle._workflow_bounds(def);
	EXCEPTION WHEN OTHERS THEN
		IF SQLSTATE = '22023' THEN
			RETURN 'refused';
		END IF;
		RETURN 'BAD ' || SQLSTATE || ' ' || SQLERRM;
	END;

	-- exactly one start event
	SELECT count(DISTINCT k) INTO n_start
	  FROM jsonb_each(def -> 'events') AS ev(k, v), jsonb_array_elements(v) AS ed
	 WHERE ed -> 'from' ? 'none';
	IF n_start <> 1 THEN
		RETURN 'BAD accepted with ' || n_start || ' start events';
	END IF;

	-- reachability, from the start edges' targets
	SELECT array_agg(ed ->> 'to') INTO reached
	  FROM jsonb_each(def -> 'events') AS ev(k, v), jsonb_array_elements(v) AS ed
	 WHERE ed -> 'from' ? 'none';
	LOOP
		grew := false;
		FOR e IN SELECT ed FROM jsonb_each(def -> 'events') AS ev(k, v), jsonb_array_elements(v) AS ed
				  WHERE ed ? 'to' LOOP
			IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(e.ed -> 'from') f WHERE f = ANY (reached))
			   AND NOT (e.ed ->> 'to' = ANY (reached)) THEN
				reached := reached || (e.ed ->> 'to');
				grew := true;
			END IF;
		END LOOP;
		FOR st IN SELECT unnest(reached) LOOP
			x := def -> 'states' -> st -> 'timer' ->> 'to';
			IF x IS NOT NULL AND NOT (x = ANY (reached)) THEN
				reached := reached || x;
				grew := true;
			END IF;
		END LOOP;
		EXIT WHEN NOT grew;
	END LOOP;
	FOR st IN SELECT jsonb_object_keys(def -> 'states') LOOP
		IF NOT (st = ANY (reached)) THEN
			RETURN 'BAD accepted with ' || st || ' unreachable';
		END IF;
	END LOOP;

	FOR b IN SELECT * FROM lifecycle._workflow_bounds(def) LOOP
		n_bounds := n_bounds + 1;
		-- the chain of timers ends in erased and is the path shown
		path := ARRAY[b.state];
		x := b.state;
		steps := 0;
		WHILE x <> 'erased' LOOP
			timer := def -> 'states' -> x -> 'timer';
			IF timer IS NULL THEN
				RETURN 'BAD accepted with ' || x || ' without a timer';
			END IF;
			path := path || (timer ->> 'event') || (timer ->> 'to');
			x := timer ->> 'to';
			steps := steps + 1;
			IF steps > 70 THEN
				RETURN 'BAD accepted with ' || b.state || ' never erased';
			END IF;
		END LOOP;
		IF path IS DISTINCT FROM b.path THEN
			RETURN 'BAD path of ' || b.state || ': ' || b.path::text || ' <> ' || path::text;
		END IF;
		-- the bound holds for every sampled start date
		FOREACH s0 IN ARRAY starts LOOP
			t := s0;
			x := b.state;
			WHILE x <> 'erased' LOOP
				timer := def -> 'states' -> x -> 'timer';
				t := wf_duration(def, timer -> 'after', t);
				x := timer ->> 'to';
			END LOOP;
			IF t - s0 > b.bound THEN
				RETURN 'BAD bound of ' || b.state || ' ' || b.bound || ' < ' || (t - s0) || ' from ' || s0;
			END IF;
		END LOOP;
		-- reminders inside their window at sampled start dates
		timer := def -> 'states' -> b.state -> 'timer';
		IF timer ? 'reminders' THEN
			offs := COALESCE(timer -> 'reminders' -> 'before', timer -> 'reminders' -> 'after');
			IF jsonb_typeof(offs) = 'string' THEN
				offs := def -> 'params' -> (offs #>> '{}');
			END IF;
			FOR s0 IN SELECT generate_series('2095-01-01'::timestamptz, '2100-12-31', '29 days') LOOP
				deadline := wf_duration(def, timer -> 'after', s0);
				FOR o IN SELECT jsonb_array_elements_text(offs) LOOP
					at := CASE WHEN timer -> 'reminders' ? 'before' THEN deadline - o::interval
							   ELSE s0 + o::interval END;
					IF at >= deadline OR at <= s0 THEN
						RETURN 'BAD reminder ' || o || ' of ' || b.state || ' outside its window from ' || s0;
					END IF;
				END LOOP;
			END LOOP;
		END IF;
	END LOOP;
	IF n_bounds <> (SELECT count(*) FROM jsonb_object_keys(def -> 'states')) THEN
		RETURN 'BAD ' || n_bounds || ' bounds';
	END IF;
	RETURN 'accepted';
END
$$;

CREATE FUNCTION wf_compile_all() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	n int := 0;
BEGIN
	FOR r IN SELECT def FROM wf_cases ORDER BY id LOOP
		BEGIN
			PERFORM count(*) FROM lifecycle._workflow_bounds(r.def);
			n := n + 1;
		EXCEPTION WHEN OTHERS THEN
			NULL;
		END;
	END LOOP;
	RETURN n;
END
$$;

CREATE FUNCTION wf_run(lo int, hi int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM wf_cases WHERE id BETWEEN lo AND hi ORDER BY id LOOP
		UPDATE wf_cases SET result = wf_check(r.def) WHERE id = r.id;
	END LOOP;
	RETURN hi - lo + 1;
END
$$;
});

my $chunk = 100;
my @cases = map { gen_case() } 1 .. $ncases;
for (my $lo = 0; $lo < $ncases; $lo += $chunk)
{
	my @rows;
	for my $i ($lo .. ($lo + $chunk - 1 < $ncases ? $lo + $chunk - 1 : $ncases - 1))
	{
		my $t = $json->encode($cases[$i]);
		die "case $i contains the quote tag" if $t =~ /\$WFQ\$/;
		push @rows, sprintf("(%d, \$WFQ\$%s\$WFQ\$)", $i + 1, $t);
	}
	$node->safe_psql('postgres',
		"INSERT INTO wf_cases (id, def) VALUES\n" . join(",\n", @rows));
}

# Every case through the checks, then compiled alone three times in one
# backend, each pass a transaction of its own: the first pass warms what
# may be cached, the later ones must not grow the backend's memory.
$node->safe_psql('postgres', "SELECT wf_run(1, $ncases)");
my $mem = q{SELECT sum(total_bytes) FROM pg_backend_memory_contexts};
my $out = $node->safe_psql('postgres', qq{
SELECT wf_compile_all();
$mem;
SELECT wf_compile_all();
$mem;
SELECT wf_compile_all();
$mem;
});
my (undef, $m1, undef, $m2, undef, $m3) = split /\n/, $out;
note("backend memory after passes: $m1, $m2, $m3");
cmp_ok($m3 - $m1, '<', 256 * 1024, 'repeated compiling does not leak memory');

my $bad = $node->safe_psql('postgres',
	q{SELECT string_agg(id || ': ' || result || E'\n    ' || def::text, E'\n') FROM wf_cases WHERE result LIKE 'BAD%'});
is($bad, '', 'no crash, only 22023, and every accepted definition satisfies the proofs and its bounds');
my $counts = $node->safe_psql('postgres',
	q{SELECT string_agg(result || '=' || n, ' ') FROM (SELECT result, count(*) n FROM wf_cases GROUP BY 1 ORDER BY 1) c});
note("results: $counts");
my ($accepted) = $counts =~ /accepted=(\d+)/;
my ($refused) = $counts =~ /refused=(\d+)/;
cmp_ok($accepted // 0, '>=', $ncases / 10, 'a fair share of the definitions is accepted');
cmp_ok($refused // 0, '>=', $ncases / 10, 'a fair share of the definitions is refused');
ok($node->safe_psql('postgres', 'SELECT 1') eq '1', 'the server is up');
unlike(slurp_file($node->logfile), qr/terminated by signal|TRAP:/, 'no backend crashed');

$node->stop;
done_testing();
