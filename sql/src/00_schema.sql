-- lifecycle: data model (schema "lifecycle"), roles and the default policy.
-- Assembled with the other parts of sql/src/ into lifecycle--0.2.0.sql.

\echo Use "CREATE EXTENSION lifecycle" to load this file. \quit

-- Roles are cluster-wide: create them once, keep them across databases.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'lifecycle_app') THEN
		CREATE ROLE lifecycle_app NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'lifecycle_auditor') THEN
		CREATE ROLE lifecycle_auditor NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'lifecycle_admin') THEN
		CREATE ROLE lifecycle_admin NOLOGIN;
	END IF;
END
$roles$;
GRANT lifecycle_app, lifecycle_auditor TO lifecycle_admin;

CREATE SCHEMA lifecycle;
REVOKE ALL ON SCHEMA lifecycle FROM PUBLIC;
GRANT USAGE ON SCHEMA lifecycle TO lifecycle_app, lifecycle_auditor, lifecycle_admin;

-- A state of a workflow: any workflow's states fit (0.2.0's enum of the
-- user lifecycle's states is this domain over text since 0.3.0; its
-- functions and the columns below keep the type's name).
CREATE DOMAIN lifecycle.state AS text COLLATE "C";

-- Functions the table definitions below use (defaults, row-level security,
-- triggers), defined first.

-- A new instance's trace id (lifecycle.users.trace_id, 0.3.0
-- telemetry): a random version 4 UUID from a generator seeded once per
-- process from the operating system's strong random source
-- (src/api/instances.c).  gen_random_uuid() reads the strong source for
-- every row: 4 us of every insert of an instance, a third of an
-- adoption's time per row.  Called as the role that inserts the row
-- (lifecycle_adopt() writes as its caller).
CREATE FUNCTION lifecycle._trace_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'lifecycle_trace_id'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION lifecycle._trace_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._trace_id() TO lifecycle_app;

-- The acting role (src/acting.c decides, for C and SQL alike).
CREATE FUNCTION lifecycle._actor()
RETURNS name
AS 'MODULE_PATHNAME', 'lifecycle_actor'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- May the acting role see rows of this tenant (src/acting.c)?  The views
-- and row-level security filter with it.
CREATE FUNCTION lifecycle._tenant_visible(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_tenant_visible'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Does the acting role see every tenant (no tenant grant limits it)?  The
-- views read it once per statement, as an InitPlan, and call
-- _tenant_visible() for each row only when it is false (a call costs more
-- than reading the row: issue 20).
CREATE FUNCTION lifecycle._tenants_unlimited()
RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_tenants_unlimited'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Backends cache lifecycle.clock, lifecycle.tenant_grants and the latest
-- policy versions (src/cache.c); a change to any of them invalidates the
-- caches of every backend at commit (a statement trigger on each).
CREATE FUNCTION lifecycle._cache_invalidate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_cache_invalidate'
LANGUAGE C;

REVOKE ALL ON FUNCTION lifecycle._actor() FROM PUBLIC;

-- The bucket of a subject (src/core/shard.c): 0 .. 1023, the same on every
-- machine; every row of the subject carries it as "shard", the column
-- Citus distributes by (docs/CITUS.md).  An application routes a call
-- with it; the adoption statement, which runs as the caller, computes it.
CREATE FUNCTION lifecycle._shard(tenant text, subject text)
RETURNS smallint
AS 'MODULE_PATHNAME', 'lifecycle_shard'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION lifecycle._shard(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._shard(text, text) TO lifecycle_app;

-- Policies: named, versioned, validated in C (src/policy.c).  The stored
-- definition is complete: keys left out were filled from "default".
-- created_by records the acting role, not the owner that the SECURITY
-- DEFINER insert runs as.
CREATE TABLE lifecycle.policies (
	name		text NOT NULL,
	version		int NOT NULL,
	definition	jsonb NOT NULL,
	created_at	timestamptz NOT NULL,
	created_by	text NOT NULL DEFAULT lifecycle._actor(),
	-- The hook functions this version is bound to (issue 10): by OID, so a
	-- renamed function stays the hook and another function taking its name
	-- never becomes it; pg_dump writes them as signatures, which restore
	-- resolves again.  NULL: no such hook.
	archive_hook	regprocedure,
	restore_hook	regprocedure,
	erase_hook	regprocedure,
	-- 0.3.0: the workflow version the policy parameterises, and its hooks
	-- as a map from hook key to function (parallel arrays, bound keys
	-- only); the three columns above stay filled for the user workflow
	-- (src/store/store.c, store_policy_insert()).
	workflow	text NOT NULL DEFAULT 'user',
	workflow_version int NOT NULL DEFAULT 1,
	hook_keys	text[] NOT NULL DEFAULT '{}',
	hook_functions	regprocedure[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (name, version)
);
CREATE TRIGGER cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON lifecycle.policies FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._cache_invalidate();

-- Delivery channels (src/sender.c).  secret is readable by the owner only.
CREATE TABLE lifecycle.channels (
	name		text PRIMARY KEY,
	kind		text NOT NULL CHECK (kind IN ('webhook', 'smtp')),
	target		text NOT NULL,
	secret		text,
	options		jsonb NOT NULL DEFAULT '{}',
	enabled		boolean NOT NULL DEFAULT true,
	disabled_reason text,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One row per subject holds the whole workflow state.  The next due timer
-- is next_at + next_event; advancing is a set-based UPDATE.
CREATE TABLE lifecycle.users (
	id			bigint GENERATED BY DEFAULT AS IDENTITY,
	tenant		text NOT NULL,
	subject		text,			/* NULL once erased */
	email		text,			/* NULL once erased */
	attrs		jsonb NOT NULL DEFAULT '{}',
	region		text,
	policy		text NOT NULL,
	policy_version int NOT NULL,
	state		lifecycle.state NOT NULL,	/* of the workflow's graph */
	state_since	timestamptz NOT NULL,
	last_seen	timestamptz,
	step		int NOT NULL DEFAULT 0,	/* reminders fired in this state */
	held		boolean NOT NULL DEFAULT false,
	hold_reason	text,
	hold_until	timestamptz,
	next_at		timestamptz,
	next_event	text,
	retry_at	timestamptz,	/* backoff after a failed transition */
	retries		int NOT NULL DEFAULT 0,
	last_error	text,
	created_at	timestamptz NOT NULL,
	-- Retention (0.2.0, docs/COMPLIANCE.md): when entering the state was
	-- due (retention deadlines count from it), and the state's deadline,
	-- kept current by every change (src/machine.c, machine_deadline()).
	state_due_at timestamptz,
	deadline_at	timestamptz,	/* NULL once erased */
	deadline_event text,		/* expire, dormant, archive, erase */
	-- OpenTelemetry (0.3.0, sql/src/85_otel.sql): the trace of this
	-- instance's life, random, drawn when it starts (never derived from
	-- personal data).
	trace_id	uuid NOT NULL DEFAULT lifecycle._trace_id(),
	-- Instances (0.3.0): every row is one run of one workflow version for
	-- one subject, identified by (tenant, subject, workflow, key); the
	-- user lifecycle's rows are workflow 'user', key ''.  e-mail, region
	-- and attrs are the subject's, the same in every live instance of the
	-- subject; data is the instance's own.  created_at is its start (the
	-- "started" anchor).
	workflow	text COLLATE "C" NOT NULL DEFAULT 'user',
	workflow_version int NOT NULL DEFAULT 1,
	key			text NOT NULL DEFAULT '',
	data		jsonb NOT NULL DEFAULT '{}',
	-- Citus (0.3.0, docs/CITUS.md): the subject's bucket,
	-- lifecycle._shard(tenant, subject) when the subject first appears,
	-- shared by all its instances and by their history, messages and
	-- evidence; the column lifecycle_distribute() distributes by.  Every
	-- key includes it; a row is addressed by (id, shard).  The default
	-- serves rows written by hand (benchmarks); lifecycle never uses it.
	shard		smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (id, shard)
) WITH (fillfactor = 80);
-- Partial: an erased user (subject NULL) leaves the index instead of
-- moving to a (tenant, NULL) key that no lookup reads (issue 20: with every
-- erasure the index kept pages of dead subjects and grew 6x over two
-- years of churn).  Lookups name a subject, so they imply the predicate;
-- the inserts say ON CONFLICT (tenant, subject, workflow, key, shard)
-- WHERE subject IS NOT NULL (shard follows from tenant and subject; Citus
-- wants it in every unique key).  Its prefix finds every instance of a
-- subject.
CREATE UNIQUE INDEX users_tenant_subject ON lifecycle.users (tenant, subject, workflow, key, shard)
	WHERE subject IS NOT NULL;
CREATE INDEX users_next_at ON lifecycle.users (next_at) WHERE next_at IS NOT NULL;
-- lifecycle.violations reads these two: deadlines of users not on hold,
-- and the (few) held users, whose hold may have lapsed.  Held users whose
-- deadline passed during the hold are not in the first: a healthy system
-- answers from an empty range, however many users are held.
CREATE INDEX users_deadline_at ON lifecycle.users (deadline_at)
	WHERE deadline_at IS NOT NULL AND NOT held;
CREATE INDEX users_hold_until ON lifecycle.users (hold_until) WHERE held;
-- lifecycle.retention_report reads the counts of each group (tenant,
-- policy, state) from lifecycle.counts (67_counts.sql) and its earliest
-- times from these, one index probe per group: oldest state_since,
-- earliest timer of users not on hold (a lapsed hold's user is found
-- through users_hold_until), earliest deadline; lifecycle.metrics and the
-- report count due timers and users past their deadline per group from
-- the last two, index-only.  "state IS NOT NULL" (true
-- of every row) keeps them to queries that name the state, as the
-- report's probes do: a lookup by tenant and subject, the worker's due
-- scan and lifecycle.violations keep their own indexes.
CREATE INDEX users_group_since ON lifecycle.users (tenant, policy, state, state_since)
	WHERE state IS NOT NULL;
CREATE INDEX users_group_next_at ON lifecycle.users (tenant, policy, state, next_at)
	WHERE next_at IS NOT NULL AND NOT held AND state IS NOT NULL;
CREATE INDEX users_group_deadline_at ON lifecycle.users (tenant, policy, state, deadline_at)
	INCLUDE (held, hold_until) WHERE deadline_at IS NOT NULL AND state IS NOT NULL;

-- Append-only trail, one row per transition.  No e-mail, no attrs.
CREATE TABLE lifecycle.history (
	id			bigint GENERATED BY DEFAULT AS IDENTITY,
	user_id		bigint NOT NULL,
	at			timestamptz NOT NULL,
	due_at		timestamptz,
	from_state	lifecycle.state,
	to_state	lifecycle.state NOT NULL,
	event		text NOT NULL,
	actor		text NOT NULL,
	detail		jsonb,
	-- OpenTelemetry (0.3.0, sql/src/85_otel.sql): the application's W3C
	-- traceparent (lifecycle.traceparent, SET LOCAL) of the transaction
	-- that wrote the row; NULL (no cost) when unset.
	traceparent	text DEFAULT NULLIF(pg_catalog.current_setting('lifecycle.traceparent', true), ''),
	shard		smallint NOT NULL DEFAULT 0,	/* the instance's (users.shard) */
	PRIMARY KEY (id, shard)
);
CREATE INDEX history_user ON lifecycle.history (user_id, at, id);

-- Messages written in the transition's transaction; id is the
-- idempotency key (webhook-id).  claimed_at is set while the sender has a
-- message in flight and cleared when it records the result; a sender that
-- starts after a crash finds the claims left behind and delivers them
-- again, with the same webhook-id.  last_attempt_at is when the last
-- delivery attempt was recorded.
CREATE TABLE lifecycle.outbox (
	id			bigint GENERATED BY DEFAULT AS IDENTITY,
	user_id		bigint NOT NULL,
	channel		text,
	message		text NOT NULL,
	payload		jsonb NOT NULL,
	status		text NOT NULL CHECK (status IN
				('unrouted', 'pending', 'sent', 'dead', 'blocked', 'cancelled')),
	attempts	int NOT NULL DEFAULT 0,
	next_attempt_at timestamptz,
	last_error	text,
	created_at	timestamptz NOT NULL,
	sent_at		timestamptz,
	claimed_at	timestamptz,
	last_attempt_at timestamptz,
	shard		smallint NOT NULL DEFAULT 0,	/* the instance's (users.shard) */
	PRIMARY KEY (id, shard)
);
CREATE INDEX outbox_due ON lifecycle.outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_user ON lifecycle.outbox (user_id);
CREATE INDEX outbox_claimed ON lifecycle.outbox (id) WHERE claimed_at IS NOT NULL;
-- Unrouted messages the application claims (lifecycle_claim_messages()).
CREATE INDEX outbox_unrouted ON lifecycle.outbox (id) WHERE status = 'unrouted';

-- Exact counts kept as they change (67_counts.sql, src/store/counts.c):
-- per family and group, folded; and the deltas not folded yet.  Not
-- dumped: restoring the rows counts them again.
CREATE TABLE lifecycle.counts (
	family		text NOT NULL CHECK (family IN ('users', 'events', 'messages', 'lateness')),
	tenant		text NOT NULL,
	key1		text NOT NULL,
	key2		text NOT NULL,
	n			bigint NOT NULL,
	held		bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (family, tenant, key1, key2)
);

-- Deltas not folded yet: appended by the triggers, deleted by the fold.
CREATE TABLE lifecycle.count_deltas (
	family		text NOT NULL,
	tenant		text NOT NULL,
	key1		text NOT NULL,
	key2		text NOT NULL,
	n			bigint NOT NULL,
	held		bigint NOT NULL DEFAULT 0
);
REVOKE ALL ON lifecycle.counts, lifecycle.count_deltas FROM PUBLIC;


-- Evidence of erasure: when, why, by whom; nothing that identifies the
-- person.  Read directly (by auditors too); row-level security hides other
-- tenants' rows.
CREATE TABLE lifecycle.erasures (
	id			bigint GENERATED BY DEFAULT AS IDENTITY,
	user_id		bigint NOT NULL,
	tenant		text NOT NULL,
	policy		text NOT NULL,
	reason		text NOT NULL,
	state_before lifecycle.state NOT NULL,
	requested_by text NOT NULL,
	erased_at	timestamptz NOT NULL,
	-- The erased instance's bucket (users.shard): shared by many subjects,
	-- it says nothing of who.
	shard		smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (id, shard)
);
ALTER TABLE lifecycle.erasures ENABLE ROW LEVEL SECURITY;
CREATE POLICY erasures_tenant ON lifecycle.erasures FOR SELECT
	USING (lifecycle._tenant_visible(tenant));

-- The lifecycle clock: now() + offset (lifecycle_travel()).  One row.
CREATE TABLE lifecycle.clock (
	one			boolean PRIMARY KEY DEFAULT true CHECK (one),
	offset_by	interval NOT NULL DEFAULT '0'
);
-- No row means no offset; lifecycle_travel() inserts it.
CREATE TRIGGER cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON lifecycle.clock FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._cache_invalidate();

-- Tenant scoping: a role listed here may act only on these tenants.
-- A role with no row is not limited (60_tenants.sql).  Row-level security:
-- a role sees the grants of the tenants it may see.
CREATE TABLE lifecycle.tenant_grants (
	role_name	name NOT NULL,
	tenant		text NOT NULL,
	PRIMARY KEY (role_name, tenant)
);
ALTER TABLE lifecycle.tenant_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_grants_tenant ON lifecycle.tenant_grants FOR SELECT
	USING (lifecycle._tenant_visible(tenant));
CREATE TRIGGER cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON lifecycle.tenant_grants FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._cache_invalidate();

REVOKE ALL ON ALL TABLES IN SCHEMA lifecycle FROM PUBLIC;

-- The first versions of the default policy and of the built-in dsar
-- workflow's policy are written by this script, so a dump leaves them out
-- (restore recreates them).
SELECT pg_catalog.pg_extension_config_dump('lifecycle.policies',
	'WHERE NOT (version = 1 AND (name = ''default'' OR (name = ''dsar'' AND workflow = ''dsar'')))');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.channels', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.users', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.history', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.erasures', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.clock', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.tenant_grants', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.users_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.erasures_id_seq', '');

-- Every transaction that writes an unrouted message sends NOTIFY
-- lifecycle_messages once, at commit, so that an application consumer can
-- LISTEN instead of polling: the statements that write them notify
-- (src/store/store_outbox.c, store_outbox_notify()).  Until 0.3.0 this
-- trigger function did, from a trigger on lifecycle.outbox, which a Citus
-- shard cannot run (docs/CITUS.md); no trigger uses it since.
CREATE FUNCTION lifecycle._outbox_notify()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_outbox_notify'
LANGUAGE C;
