# Copyright (c) lifecycle authors
#
# Random runs of accepted workflow definitions never outlive their
# computed bound (issue 17, "Tests that would catch breakage"; DESIGN
# "What is proved when a workflow is defined").
#
# Seeded random definitions (412's generator of random graphs) are defined
# with lifecycle_define_workflow() until WF_RUN_WORKFLOWS are accepted.
# Instances of them, for a few subjects (several workflows and keys each),
# then live one random history on one lifecycle clock, in pg_cron mode
# (lifecycle_tick(), no worker): starts, signals of the workflows' own
# events, subject-wide holds (with and without an end) and releases, short
# travels each followed by ticks, and outages (a long travel, then the
# catch-up ticks).  At the end every hold is released and nobody calls
# anything again: the clock moves from due time to due time, ticking,
# until no instance is left.
#
# Properties, from each instance's history, its definition and
# lifecycle.retention_bounds:
# - every call ends in its result or in 55000 / 42704 (nothing else), and
#   a signal returns the state the instance is in;
# - every instance ends erased, by its timers alone after the last call;
# - after its last call (or the end of its last hold), an instance lives at
#   most the bound of the state it was in then: the sum over the timers
#   that fired, each from the time the previous one fired to its own due
#   time, never exceeds that state's bound (the worker's lateness is what
#   lifecycle.violations shows, and does not count);
# - every timer that fired was due exactly when its anchor and its
#   interval say (entered: when the state was entered; due: when entering
#   it was due; started: the instance's start), with PostgreSQL's own
#   timestamptz + interval, whatever the outages: lateness never extends
#   retention, and a late notice gives its full interval.
#
# Deterministic: WF_RUN_SEED (default 20261208) seeds the generator and is
# printed; WF_RUN_WORKFLOWS (default 12) definitions, WF_RUN_STEPS (default
# 500) steps.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{WF_RUN_SEED} || 20261208;
my $nwf = $ENV{WF_RUN_WORKFLOWS} || 12;
my $nsteps = $ENV{WF_RUN_STEPS} || 500;
diag("WF_RUN_SEED=$seed WF_RUN_WORKFLOWS=$nwf WF_RUN_STEPS=$nsteps");

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

sub rinterval
{
	return pick('1 day', '3 days', '12 hours', '1 mon', '2 mons', '1 year',
		'30 days', '1 mon 2 days', '90 minutes', '14 days', '7 days', '2 days');
}
sub roffset { return pick('1 day', '2 days', '7 days', '12 hours', '30 days', '1 mon', '3 days'); }

# A random graph as test/t/412_workflow_properties.pl makes them (more
# often anchored at "due", at least two states): states s1..sn, timers mostly forward, a start event into s1, call events
# between states (moves, touch, noop, refuse), every anchor.
sub rgraph
{
	my $n = 2 + rnd(5);
	my @states = map { "s$_" } 1 .. $n;
	my %params;
	for my $i (1 .. rnd(4))
	{
		$params{"p$i"} = chance(0.7) ? rinterval() : [ map { roffset() } 1 .. 1 + rnd(3) ];
	}
	my @ivparams = grep { !ref $params{$_} } sort keys %params;
	my @lsparams = grep { ref $params{$_} } sort keys %params;
	my %def = (params => \%params, states => {}, events => {},
		messages => { m1 => {}, m2 => {} });
	for my $i (1 .. $n)
	{
		my @ahead = (@states[ $i .. $n - 1 ], 'erased');
		my $after = chance(0.3) && @ivparams ? pick(@ivparams) : rinterval();
		$after = [ $after, chance(0.5) && @ivparams ? pick(@ivparams) : rinterval() ] if chance(0.2);
		my %timer = (
			event => chance(0.8) ? "t$i" : pick('t1', 'lapse'),
			after => $after,
			to => chance(0.95) ? pick(@ahead) : pick(@states, 'erased'));
		$timer{from} = pick('entered', 'due', 'due', 'last_seen', 'started') if chance(0.8);
		$timer{message} = pick('m1', 'm2') if chance(0.3);
		$timer{deadline} = pick('d1', 'erase') if chance(0.2);
		if (chance(0.35))
		{
			my %r = (event => "r$i");
			my $dir = pick('before', 'after');
			$r{$dir} = chance(0.3) && @lsparams ? pick(@lsparams) : [ map { roffset() } 1 .. 1 + rnd(3) ];
			$r{message} = 'm1' if chance(0.5);
			$timer{reminders} = \%r;
		}
		$def{states}{"s$i"} = { timer => \%timer };
	}
	$def{events}{start} = [ { from => ['none'], to => 's1', message => 'm2' } ];
	for my $e (1 .. 1 + rnd(4))
	{
		my @edges;
		my %used;
		for (1 .. 1 + rnd(3))
		{
			my @from = grep { !$used{$_} && chance(0.5) } @states;
			next unless @from;
			$used{$_} = 1 for @from;
			my %edge = (from => \@from);
			if (chance(0.6)) { $edge{to} = pick(@states, @states, 'erased'); }
			else
			{
				$edge{effect} = pick('touch', 'touch', 'noop', 'refuse');
				$edge{hint} = 'No.' if $edge{effect} eq 'refuse';
			}
			$edge{role} = 'admin' if chance(0.1);
			push @edges, \%edge;
		}
		$def{events}{"e$e"} = \@edges if @edges;
	}
	return \%def;
}

my $node = PostgreSQL::Test::Cluster->new('wfruns');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'lifecycle'
lifecycle.database = 'postgres'
lifecycle.enabled = off
lifecycle.allow_time_travel = on
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION lifecycle;
CREATE TABLE p_wf (name text PRIMARY KEY, def jsonb);
-- Every call: its lifecycle time, its result or error.
CREATE TABLE p_log (step int PRIMARY KEY, kind text, wf text, subject text, key text,
	arg text, at timestamptz, result text, sqlstate text, message text, bad text);
-- The instances each call changed (state, last_seen, hold, timer, history).
CREATE TABLE p_effects (step int, user_id bigint, at timestamptz);

CREATE FUNCTION p_define(p_name text, p_def jsonb) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lifecycle_define_workflow(p_name, p_def);
	INSERT INTO p_wf VALUES (p_name, p_def);
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

-- What a call may change, per instance of the subject.
CREATE FUNCTION p_snap(p_subject text, p_ids bigint[])
RETURNS TABLE (id bigint, snap text)
LANGUAGE sql AS $$
	SELECT u.id, concat_ws('|', u.state, u.last_seen, u.held, u.hold_until, u.next_at,
		   (SELECT count(*) FROM lifecycle.history h WHERE h.user_id = u.id))
	  FROM lifecycle.users u
	 WHERE u.tenant = 'prop' AND (u.subject = p_subject OR u.id = ANY (p_ids))
$$;

CREATE FUNCTION p_call(p_step int, p_kind text, p_wf text, p_subject text, p_key text, p_arg text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_now timestamptz := lifecycle_now();
	v_ids bigint[];
	v_snaps text[];
	v_res text;
	v_state text;
	v_msg text;
	v_bad text;
BEGIN
	-- No subject named: a live instance (a held one to release), of p_wf
	-- if it has one, and for a signal mostly an event its state has an
	-- edge for.
	IF p_subject IS NULL THEN
		SELECT u.workflow, u.subject, u.key INTO p_wf, p_subject, p_key
		  FROM lifecycle.users u
		 WHERE u.tenant = 'prop' AND u.state <> 'erased' AND u.subject IS NOT NULL
		 ORDER BY p_kind = 'release' AND NOT u.held,
				  u.workflow IS DISTINCT FROM coalesce(p_wf, u.workflow), random(), u.id
		 LIMIT 1;
		IF p_subject IS NULL THEN
			RETURN;
		END IF;
		IF p_kind = 'signal' THEN
			SELECT e.k INTO p_arg
			  FROM p_wf w, lifecycle.users u, jsonb_each(w.def -> 'events') AS e(k, v)
			 WHERE w.name = p_wf AND u.tenant = 'prop' AND u.subject = p_subject
			   AND u.workflow = p_wf AND u.key = p_key
			 ORDER BY (random() < 0.8 AND EXISTS (
						SELECT 1 FROM jsonb_array_elements(e.v) ed WHERE ed -> 'from' ? u.state)) DESC,
					  random(), e.k
			 LIMIT 1;
		END IF;
	END IF;
	SELECT array_agg(s.id), array_agg(s.snap) INTO v_ids, v_snaps
	  FROM p_snap(p_subject, '{}') s;
	BEGIN
		CASE p_kind
		WHEN 'start' THEN
			v_res := lifecycle_start(p_wf, p_subject, 'prop', p_key,
									 email => p_subject || '@example.com')::text;
		WHEN 'signal' THEN
			v_res := lifecycle_signal(p_wf, p_subject, p_arg, 'prop', p_key);
		WHEN 'hold' THEN
			PERFORM lifecycle_hold(p_subject, 'prop', 'property test',
								   v_now + p_arg::interval);
			v_res := 'held';
		WHEN 'release' THEN
			PERFORM lifecycle_release(p_subject, 'prop');
			v_res := 'released';
		END CASE;
	EXCEPTION WHEN OTHERS THEN
		v_state := SQLSTATE;
		v_msg := SQLERRM;
	END;
	IF v_state IS NOT NULL AND v_state NOT IN ('55000', '42704') THEN
		v_bad := 'error ' || v_state || ': ' || v_msg;
	ELSIF p_kind = 'signal' AND v_state IS NULL AND v_res <> 'erased'
		  AND v_res IS DISTINCT FROM (SELECT u.state FROM lifecycle.users u
									  WHERE u.tenant = 'prop' AND u.subject = p_subject
										AND u.workflow = p_wf AND u.key = p_key
										AND u.state <> 'erased') THEN
		v_bad := 'signal returned ' || coalesce(v_res, 'NULL') || ', not the state';
	END IF;
	-- Calls write their times with the precise clock (later than the
	-- transaction's lifecycle_now()): the call's time is taken after it.
	v_now := clock_timestamp() + (lifecycle_now() - now());
	INSERT INTO p_log VALUES (p_step, p_kind, p_wf, p_subject, p_key, p_arg, v_now,
							  v_res, v_state, v_msg, v_bad);
	INSERT INTO p_effects
	SELECT p_step, a.id, v_now
	  FROM p_snap(p_subject, v_ids) a
	  LEFT JOIN unnest(v_ids, v_snaps) AS b(id, snap) ON b.id = a.id
	 WHERE b.snap IS DISTINCT FROM a.snap;
END
$$;

CREATE FUNCTION p_travel(p_step int, p_by text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lifecycle_travel(p_by::interval);
	INSERT INTO p_log (step, kind, arg, at) VALUES (p_step, 'travel', p_by, lifecycle_now());
END
$$;

-- Tick until nothing is due, a transaction per tick.
CREATE PROCEDURE p_tick()
LANGUAGE plpgsql AS $$
DECLARE
	n int;
	i int := 0;
BEGIN
	LOOP
		n := lifecycle_tick();
		COMMIT;
		i := i + 1;
		EXIT WHEN n = 0 OR i > 10000;
	END LOOP;
END
$$;

-- The end: release every hold, then nobody calls anything again; the
-- clock moves from due time to due time until no instance is left.
CREATE PROCEDURE p_final(p_step int)
LANGUAGE plpgsql AS $$
DECLARE
	s text;
	nxt timestamptz;
	i int := 0;
BEGIN
	FOREACH s IN ARRAY coalesce((SELECT array_agg(DISTINCT subject) FROM lifecycle.users
								  WHERE tenant = 'prop' AND held AND subject IS NOT NULL), '{}')
	LOOP
		PERFORM p_call(p_step, 'release', NULL, s, NULL, NULL);
		p_step := p_step + 1;
		COMMIT;
	END LOOP;
	LOOP
		CALL p_tick();
		SELECT min(next_at) INTO nxt FROM lifecycle.users
		 WHERE tenant = 'prop' AND state <> 'erased';
		EXIT WHEN nxt IS NULL;
		i := i + 1;
		EXIT WHEN i > 5000;
		IF nxt > lifecycle_now() THEN
			PERFORM p_travel(p_step, (nxt - lifecycle_now() + interval '1 second')::text);
			p_step := p_step + 1;
			COMMIT;
		END IF;
	END LOOP;
END
$$;

-- A timer's interval from t, its terms summed in order.
CREATE FUNCTION p_after(def jsonb, after jsonb, t timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
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
});

# --- definitions ---------------------------------------------------------
my @wfs;
my %events;
my ($tried, $refused) = (0, 0);
while (@wfs < $nwf && $tried < 500)
{
	my $def = rgraph();
	my $name = 'w' . (@wfs + 1);
	my $t = $json->encode($def);
	$tried++;
	my $r = $node->safe_psql('postgres', "SELECT p_define('$name', \$WFQ\$$t\$WFQ\$)");
	if ($r eq 'accepted')
	{
		push @wfs, $name;
		$events{$name} = [ sort keys %{ $def->{events} } ];
	}
	elsif ($r eq '22023') { $refused++; }
	else { fail("defining a random workflow answered $r: $t"); }
}
is(scalar(@wfs), $nwf, "$nwf random definitions accepted ($tried tried, $refused refused with 22023)");

# --- one random history ---------------------------------------------------
my @subjects = map { "p$_" } 1 .. 5;
# The SQL side picks live instances and events with random(): seeded too.
my @script = (sprintf("SELECT setseed(%.6f);", ($seed % 1000003) / 1000003));
my $step = 0;
for (1 .. $nsteps)
{
	my $k = rnd(100);
	my $wf = pick(@wfs);
	my $s = pick(@subjects);
	my $key = pick('', '', 'k');
	$step++;
	if ($k < 15 || $step < 10)
	{
		push @script, "SELECT p_call($step, 'start', '$wf', '$s', '$key', NULL);";
	}
	elsif ($k < 60)
	{
		push @script, "SELECT p_call($step, 'signal', '$wf', NULL, NULL, NULL);";
	}
	elsif ($k < 66)
	{
		my $until = pick('10 years', '2 days', '20 days', '3 mons');
		push @script, "SELECT p_call($step, 'hold', NULL, NULL, NULL, '$until');";
	}
	elsif ($k < 72)
	{
		push @script, "SELECT p_call($step, 'release', NULL, NULL, NULL, NULL);";
	}
	elsif ($k < 97)
	{
		my $by = pick('1 hour', '6 hours', '12 hours', '1 day', '2 days', '5 days');
		push @script, "SELECT p_travel($step, '$by');", 'CALL p_tick();';
	}
	else
	{
		# An outage: the clock moves far with nobody ticking, then the
		# catch-up.
		my $by = pick('20 days', '40 days', '100 days', '1 year');
		push @script, "SELECT p_travel($step, '$by');", 'CALL p_tick();';
	}
}
$step++;
push @script, "CALL p_final($step);";
my ($rc, $out, $err) = $node->psql('postgres', join("\n", @script),
	on_error_stop => 1);
is($rc, 0, 'the random history ran to its end') or diag($err);

# --- properties ----------------------------------------------------------
is($node->safe_psql('postgres',
		q{SELECT coalesce(string_agg(step || ' ' || kind || ' ' || coalesce(wf, '') || ' ' || subject
			|| ' ' || coalesce(arg, '') || ': ' || bad, E'\n' ORDER BY step), '') FROM p_log
		   WHERE bad IS NOT NULL}),
	'', 'every call ended in its result, 55000 or 42704, and signals return the state');

my $stats = $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM lifecycle.users WHERE tenant = 'prop') || ' instances, '
	|| (SELECT count(*) FROM p_log WHERE kind = 'signal' AND sqlstate IS NULL) || ' signals done, '
	|| (SELECT count(*) FROM p_log WHERE kind = 'signal' AND sqlstate IS NOT NULL) || ' refused, '
	|| (SELECT count(*) FROM p_log WHERE kind = 'hold' AND sqlstate IS NULL) || ' holds, '
	|| (SELECT count(*) FROM p_log WHERE kind = 'travel') || ' travels, '
	|| (SELECT count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
		 WHERE u.tenant = 'prop' AND h.due_at IS NOT NULL) || ' timers fired, '
	|| (SELECT count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
		 WHERE u.tenant = 'prop' AND h.due_at IS NOT NULL AND h.at - h.due_at > interval '1 day')
	|| ' of them over a day late'});
note("run: $stats");
my ($ninst) = $stats =~ /^(\d+) instances/;
my ($nsig) = $stats =~ /(\d+) signals done/;
my ($nhold) = $stats =~ /(\d+) holds/;
my ($nlate) = $stats =~ /(\d+) of them over a day late/;
cmp_ok($ninst, '>=', 20, 'a fair number of instances ran');
cmp_ok($nsig, '>=', 30, 'a fair number of signals went through');
cmp_ok($nhold, '>=', 5, 'a fair number of (subject-wide) holds were placed');
cmp_ok($nlate, '>=', 5, 'outages made timers late');

is($node->safe_psql('postgres',
		q{SELECT coalesce(string_agg(id || ' ' || workflow || ' ' || state, E'\n'), '')
		   FROM lifecycle.users WHERE tenant = 'prop' AND state <> 'erased'}),
	'', 'every instance ended erased, by its timers alone after the last call');

# The bound: from the last call (or hold end) of each instance.
my $bound_check = q{
WITH inst AS (
	SELECT u.id, u.workflow, u.workflow_version, u.policy, u.policy_version
	  FROM lifecycle.users u WHERE u.tenant = 'prop'),
ref AS (
	SELECT i.*, greatest(
		(SELECT max(e.at) FROM p_effects e WHERE e.user_id = i.id),
		(SELECT max(coalesce(h.due_at, h.at)) FROM lifecycle.history h
		  WHERE h.user_id = i.id AND h.event = 'hold_lapse')) AS t_ref
	  FROM inst i),
ref_state AS (
	SELECT r.*, (SELECT h.to_state FROM lifecycle.history h
				  WHERE h.user_id = r.id AND h.at <= r.t_ref
				  ORDER BY h.at DESC, h.id DESC LIMIT 1) AS s_ref
	  FROM ref r),
moves AS (
	SELECT r.id, h.event, h.due_at, h.at,
		   coalesce(lag(h.at) OVER (PARTITION BY r.id ORDER BY h.at, h.id), r.t_ref) AS prev_at
	  FROM ref_state r JOIN lifecycle.history h ON h.user_id = r.id
	 WHERE h.at > r.t_ref AND h.from_state IS DISTINCT FROM h.to_state),
lived AS (
	SELECT id, sum(greatest(interval '0', due_at - prev_at)) AS lived,
		   bool_or(due_at IS NULL) AS by_call, string_agg(event, '>' ORDER BY at) AS chain
	  FROM moves GROUP BY id)
SELECT coalesce(string_agg(r.id || ' ' || r.workflow || ' from ' || coalesce(r.s_ref, '?') || ' at '
		|| coalesce(r.t_ref::text, '?') || ': ' ||
		CASE WHEN r.t_ref IS NULL OR r.s_ref IS NULL THEN 'no last call'
			 WHEN l.by_call THEN 'a call after the last call: ' || l.chain
			 WHEN b.bound IS NULL THEN 'no bound'
			 ELSE 'lived ' || l.lived || ' > bound ' || b.bound || ' (' || l.chain || ')' END,
		E'\n' ORDER BY r.id), '')
  FROM ref_state r
  LEFT JOIN lived l ON l.id = r.id
  LEFT JOIN lifecycle.retention_bounds b
	ON b.workflow = r.workflow AND b.workflow_version = r.workflow_version
   AND b.policy = r.policy AND b.policy_version = r.policy_version AND b.state = r.s_ref
 WHERE r.t_ref IS NULL OR r.s_ref IS NULL
	OR (r.s_ref <> 'erased' AND (l.by_call OR b.bound IS NULL
								  OR coalesce(l.lived, interval '0') > b.bound))
};
is($node->safe_psql('postgres', $bound_check), '',
	'no instance outlived the bound of the state it was in after its last call');

# Every timer that fired was due when its anchor and interval say.
my $due_check = q{
WITH rows AS (
	SELECT h.*, u.workflow, u.created_at, w.def,
		   w.def -> 'states' -> h.from_state -> 'timer' AS timer
	  FROM lifecycle.history h
	  JOIN lifecycle.users u ON u.id = h.user_id AND u.tenant = 'prop'
	  JOIN p_wf w ON w.name = u.workflow
	 WHERE h.due_at IS NOT NULL AND h.from_state IS DISTINCT FROM h.to_state
	   AND h.event NOT IN ('hold_lapse')),
entry AS (
	SELECT r.*, (SELECT e FROM lifecycle.history e
				  WHERE e.user_id = r.user_id AND (e.at, e.id) < (r.at, r.id)
					AND e.to_state = r.from_state
					AND (e.from_state IS DISTINCT FROM e.to_state
						 OR (e.due_at IS NULL AND r.def -> 'events' ? e.event))
				  ORDER BY e.at DESC, e.id DESC LIMIT 1) AS e
	  FROM rows r),
expect AS (
	SELECT x.*, CASE coalesce(x.timer ->> 'from', 'entered')
		WHEN 'entered' THEN p_after(x.def, x.timer -> 'after', (x.e).at)
		WHEN 'due' THEN p_after(x.def, x.timer -> 'after', coalesce((x.e).due_at, (x.e).at))
		WHEN 'started' THEN p_after(x.def, x.timer -> 'after', x.created_at)
		END AS expected
	  FROM entry x)
SELECT count(*) FILTER (WHERE timer ->> 'from' = 'due' AND (e).due_at < (e).at) || ' '
	|| count(*) FILTER (WHERE coalesce(timer ->> 'from', 'entered') = 'entered' AND (e).due_at < (e).at) || ' '
	|| count(*) FILTER (WHERE timer ->> 'from' = 'started') || E'\n' ||
	coalesce(string_agg(user_id || ' ' || workflow || ' ' || from_state || ' -' || event || '-> '
		|| to_state || ' from ' || coalesce(timer ->> 'from', 'entered') || ': due ' || due_at
		|| ', expected ' || coalesce(expected::text, '?'), E'\n' ORDER BY user_id, at)
		FILTER (WHERE expected IS NULL OR expected <> due_at), '')
  FROM expect
 WHERE coalesce(timer ->> 'from', 'entered') <> 'last_seen'
};
my ($counts, $wrong) = split /\n/, $node->safe_psql('postgres', $due_check), 2;
my ($late_due, $late_entered, $started) = split / /, $counts;
note("timers checked: $late_due from 'due' and $late_entered from 'entered' after a late entry, $started from 'started'");
cmp_ok($late_due, '>=', 3, 'timers anchored at "due" were checked after late entries');
cmp_ok($late_entered, '>=', 3, 'timers anchored at "entered" were checked after late entries');
is($wrong // '', '', 'every timer was due when its anchor and interval say, whatever the outages');

ok($node->safe_psql('postgres', 'SELECT 1') eq '1', 'the server is up');
unlike(slurp_file($node->logfile), qr/terminated by signal|TRAP:/, 'no backend crashed');

$node->stop;
done_testing();
