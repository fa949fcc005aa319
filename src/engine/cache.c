/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Backend caches of lifecycle.clock, lifecycle.tenant_grants, the
 *	  latest version of each policy and the parsed policy versions, so that
 *	  the hot calls (touch, invite) run one statement instead of four.
 *
 * The three tables are small and rarely written.  A statement trigger on
 * each (lifecycle._cache_invalidate(), as pg_cron does for cron.job) sends
 * a relcache invalidation of the table; PostgreSQL delivers it to every
 * backend at commit, and replays it locally at the next command and at
 * abort, so no backend keeps a value another committed over, and none
 * keeps a value of its own that rolled back.  We cannot look up OIDs in an
 * invalidation callback, so every relcache invalidation, and any change to
 * roles, only marks the caches stale; the next accessor drops them.
 *
 * Parsed policies are handed out as pointers that callers keep for the
 * rest of their transaction (a batch of the scheduler holds one per user,
 * across hooks and SPI calls that may process invalidations).  So a stale
 * set of parsed policies is not freed when it is dropped: its memory
 * context is moved under the transaction's, and goes when the transaction
 * ends.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "cache.h"
#include "machine.h"
#include "store_workflow.h"
#include "policy.h"
#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_cache_invalidate);

typedef struct CachePolicyEntry
{
	char		name[NAMEDATALEN];
	int			version;
} CachePolicyEntry;

typedef struct CacheParsedKey
{
	char		name[NAMEDATALEN];
	int			version;
} CacheParsedKey;

typedef struct CacheParsedEntry
{
	CacheParsedKey key;
	LcPolicy   *policy;
} CacheParsedEntry;

typedef struct CacheState
{
	bool		callbacks;
	bool		stale;			/* an invalidation arrived: reset on entry */
	MemoryContext cxt;			/* everything below lives here */
	bool		clock_valid;
	LocalTransactionId clock_lxid;	/* workers: read once per transaction */
	Interval	clock_offset;
	bool		grants_valid;
	int			ngrants;
	LcTenantGrant *grants;
	HTAB	   *policies;		/* latest version by name */
	MemoryContext parsed_cxt;	/* parsed policies; retired, not freed */
	HTAB	   *parsed;
	HTAB	   *graphs;			/* compiled workflows, in parsed_cxt */
} CacheState;

static CacheState cache_state;

static void cache_reset(void);
static void cache_enter(void);
static void cache_relcache_callback(Datum arg, Oid relid);
static void cache_syscache_callback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * Forget everything.
 */
static void
cache_reset(void)
{
	if (cache_state.cxt != NULL)
		MemoryContextReset(cache_state.cxt);
	cache_state.clock_valid = false;
	cache_state.grants_valid = false;
	cache_state.ngrants = 0;
	cache_state.grants = NULL;
	cache_state.policies = NULL;

	/*
	 * Parsed policies may still be in use by a caller in this transaction:
	 * free them with the transaction, not now.
	 */
	if (cache_state.parsed_cxt != NULL)
	{
		if (IsTransactionState())
			MemoryContextSetParent(cache_state.parsed_cxt, TopTransactionContext);
		else
			MemoryContextDelete(cache_state.parsed_cxt);
	}
	cache_state.parsed_cxt = NULL;
	cache_state.parsed = NULL;
	cache_state.graphs = NULL;
}

/*
 * Relcache invalidation: ours (sent by the trigger) or a full reset.  We
 * cannot look up OIDs here, so any invalidation of a relation marks the
 * caches stale; they refill with one query each.  Nothing is freed here: a
 * caller may be iterating over the grants when an invalidation arrives.
 */
static void
cache_relcache_callback(Datum arg, Oid relid)
{
	cache_state.stale = true;
}

/*
 * A role was created, dropped or renamed (grants name roles), or its
 * membership changed.
 */
static void
cache_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	cache_state.stale = true;
}

/*
 * On entry to every accessor: register the callbacks once per backend,
 * and drop what an invalidation made stale.
 */
static void
cache_enter(void)
{
	if (!cache_state.callbacks)
	{
		cache_state.cxt = AllocSetContextCreate(TopMemoryContext,
												"lifecycle caches",
												ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(cache_relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, cache_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, cache_syscache_callback, (Datum) 0);
		cache_state.callbacks = true;
	}
	if (cache_state.stale)
	{
		cache_reset();
		cache_state.stale = false;
	}
}

/*
 * The travel offset of the lifecycle clock.
 */
const Interval *
cache_clock_offset(void)
{
	cache_enter();

	/*
	 * A worker is woken by a commit callback that runs before the commit's
	 * invalidations are sent, so it could wake to a stale offset: workers
	 * read the offset once per transaction instead.
	 */
	if (!cache_state.clock_valid ||
		(IsBackgroundWorker && cache_state.clock_lxid != MyProc->lxid))
	{
		cache_state.clock_offset = *store_clock_offset();
		cache_state.clock_valid = true;
		cache_state.clock_lxid = MyProc->lxid;
	}
	return &cache_state.clock_offset;
}

/*
 * This backend has just written a new offset.
 */
void
cache_clock_set(const Interval *offset)
{
	cache_enter();
	cache_state.clock_offset = *offset;
	cache_state.clock_valid = true;
	cache_state.clock_lxid = MyProc->lxid;
}

/*
 * Load the grants if needed.
 */
static void
cache_load_grants(void)
{
	if (!cache_state.grants_valid)
	{
		cache_state.ngrants = store_tenant_grants(cache_state.cxt,
												  &cache_state.grants);
		cache_state.grants_valid = true;
	}
}

/*
 * Does any tenant grant exist?  Without one nobody is limited, and the
 * callers need not even resolve the acting role.
 */
bool
cache_tenant_grants_exist(void)
{
	cache_enter();
	cache_load_grants();
	return cache_state.ngrants > 0;
}

/*
 * May roleid act on tenant?  A role that no grant limits (directly or
 * through membership) may act on every tenant.  Superusers are checked by
 * the caller.
 */
bool
cache_tenant_allowed(Oid roleid, const char *tenant)
{
	bool		limited = false;

	cache_enter();
	cache_load_grants();

	for (int i = 0; i < cache_state.ngrants; i++)
	{
		LcTenantGrant *g = &cache_state.grants[i];

		if (!is_member_of_role(roleid, g->roleid))
			continue;
		if (strcmp(g->tenant, tenant) == 0)
			return true;
		limited = true;
	}
	return !limited;
}

/*
 * Is roleid limited by some grant, directly or through membership?
 * Superusers are checked by the caller.
 */
bool
cache_tenant_role_limited(Oid roleid)
{
	cache_enter();
	cache_load_grants();

	for (int i = 0; i < cache_state.ngrants; i++)
		if (is_member_of_role(roleid, cache_state.grants[i].roleid))
			return true;
	return false;
}

/*
 * The latest version of a policy, 0 when none.
 */
int
cache_policy_latest(const char *name)
{
	CachePolicyEntry *entry;
	char		key[NAMEDATALEN];
	bool		found;

	cache_enter();
	if (strlen(name) >= NAMEDATALEN)
		return 0;
	if (cache_state.policies == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(CachePolicyEntry);
		ctl.hcxt = cache_state.cxt;
		cache_state.policies = hash_create("lifecycle latest policies", 16,
										   &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	entry = hash_search(cache_state.policies, key, HASH_FIND, &found);
	if (found)
		return entry->version;
	{
		int			version = store_policy_latest(name, NULL);

		/* An invalidation during the query only marks the hash stale. */
		entry = hash_search(cache_state.policies, key, HASH_ENTER, &found);
		entry->version = version;
		return version;
	}
}

/*
 * The context and hash of parsed policies and compiled graphs.
 */
static void
cache_parsed_init(void)
{
	HASHCTL		ctl;

	if (cache_state.parsed != NULL)
		return;
	cache_state.parsed_cxt = AllocSetContextCreate(TopMemoryContext,
												   "lifecycle parsed policies",
												   ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(CacheParsedKey);
	ctl.entrysize = sizeof(CacheParsedEntry);
	ctl.hcxt = cache_state.parsed_cxt;
	cache_state.parsed = hash_create("lifecycle parsed policies", 16, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	cache_state.graphs = hash_create("lifecycle compiled workflows", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * A compiled workflow version, from the cache or compiled.  Raises 42704
 * for an unknown version.  Valid until the end of the current transaction
 * (retired with the parsed policies that point to it).
 */
const LcGraph *
cache_graph(const char *name, int version)
{
	CacheParsedKey key;
	CacheParsedEntry *entry;
	bool		found;
	LcGraph    *g;
	Jsonb	   *def;

	cache_enter();
	cache_parsed_init();
	memset(&key, 0, sizeof(key));
	strlcpy(key.name, name, sizeof(key.name));
	key.version = version;
	entry = hash_search(cache_state.graphs, &key, HASH_FIND, &found);
	if (found)
		return (const LcGraph *) entry->policy;
	def = store_workflow_get(name, version, NULL, NULL);
	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" version %d does not exist", name, version)));
	/* A stored version was proved when it was defined: this compiles it. */
	def = (Jsonb *) pg_detoast_datum((struct varlena *) def);
	g = workflow_compile(name, version, def, cache_state.parsed_cxt);
	entry = hash_search(cache_state.graphs, &key, HASH_ENTER, &found);
	entry->policy = (LcPolicy *) g;
	return g;
}

/*
 * The latest version of a workflow, 0 when there is none (not cached:
 * definitions are rare, and a definition in this transaction may roll
 * back).
 */
int
cache_workflow_latest(const char *name)
{
	int			version = 0;

	if (store_workflow_get(name, 0, &version, NULL) == NULL)
		return 0;
	return version;
}

/*
 * A parsed policy version, from the cache or loaded through store.c and
 * parsed by policy.c against its workflow's graph.  Raises 42704 for an
 * unknown version.  The result stays valid until the end of the current
 * transaction.
 */
LcPolicy *
cache_policy(const char *name, int version)
{
	CacheParsedKey key;
	CacheParsedEntry *entry;
	bool		found;
	MemoryContext oldcxt;
	MemoryContext cxt;
	LcPolicyRow row;
	const LcGraph *g;
	LcPolicy   *p;

	cache_enter();
	cache_parsed_init();

	memset(&key, 0, sizeof(key));
	strlcpy(key.name, name, sizeof(key.name));
	key.version = version;
	entry = hash_search(cache_state.parsed, &key, HASH_FIND, &found);
	if (found)
		return entry->policy;

	/*
	 * Loading and parsing run queries and catalog lookups, which may
	 * process invalidations: those only mark the cache stale, so the
	 * context and the hash stay valid until we have entered the result.
	 */
	if (!store_policy_load(name, version, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" version %d does not exist", name, version)));
	/* This may drop a stale cache: the context is taken after it. */
	g = cache_graph(row.workflow, row.workflow_version);
	cxt = cache_state.parsed_cxt;
	oldcxt = MemoryContextSwitchTo(cxt);
	row.def = (Jsonb *) pg_detoast_datum_copy((struct varlena *) row.def);
	/* Hooks are bound by OID: the names are not looked up again. */
	p = policy_parse(g, name, version, row.def, NIL, NULL);
	for (int i = 0; i < g->n_hooks; i++)
	{
		p->hook_oids[i] = InvalidOid;
		if (p->hooks[i] == NULL)
			continue;
		for (int j = 0; j < row.n_hooks; j++)
			if (strcmp(row.hook_keys[j], g->hooks[i]) == 0)
				p->hook_oids[i] = row.hook_oids[j];
	}
	MemoryContextSwitchTo(oldcxt);

	entry = hash_search(cache_state.parsed, &key, HASH_ENTER, &found);
	entry->policy = p;
	return p;
}

/*
 * Drop every cached policy at the next access (a definition in this
 * transaction may roll back).
 */
void
cache_policy_forget(void)
{
	cache_state.stale = true;
}

/*
 * lifecycle._cache_invalidate(): statement trigger on the cached tables.
 * Sends a relcache invalidation of the table, delivered at commit.
 */
Datum
lifecycle_cache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("lifecycle._cache_invalidate() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
