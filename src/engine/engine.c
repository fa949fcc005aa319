/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  Carry out transitions decided by the machine.
 *
 * engine_tick_batch() is the heart of advancing timers: it locks a batch
 * of due users (FOR UPDATE SKIP LOCKED), runs the machine on each in
 * memory, and writes every plain transition with one statement.  Users
 * whose transition calls a hook or erases data are carried out set-based
 * too: one subtransaction for all of them (one statement for the
 * transitions, the hooks called one user after the other, one statement
 * for the erasures).  Only when that subtransaction fails is the group
 * split in halves and each half tried again, down to a single user, so a
 * failing hook rolls back that user only: the user stays due, is retried
 * with exponential backoff (1 minute doubling to 1 hour, lifecycle clock),
 * and the error is recorded on that user.  A batch with k failing users
 * costs O(k log n) subtransactions instead of n.  Hooks of a group that
 * failed are called again when its halves are retried (their writes were
 * rolled back), so a hook must not have effects outside the transaction.
 *
 * Callers are connected to SPI and inside a transaction.
 *
 * IDENTIFICATION
 *	  src/engine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "acting.h"
#include "backoff.h"
#include "clock.h"
#include "engine.h"
#include "policy.h"

/* The last hook error's own text, for the scheduler to record. */
typedef struct EngineState
{
	char	   *hook_error;
} EngineState;

static EngineState engine_state;

/*
 * Hook functions looked up once per group of users: the owner and the
 * FmgrInfo (whose fn_extra keeps a SQL or PL function's cached state
 * between the calls of one group; a fresh FmgrInfo per call would parse
 * and plan a SQL-language hook again for every user).
 */
#define ENGINE_HOOK_CACHE 8
typedef struct EngineHookCache
{
	int			n;
	Oid			fn[ENGINE_HOOK_CACHE];
	Oid			owner[ENGINE_HOOK_CACHE];
	FmgrInfo	flinfo[ENGINE_HOOK_CACHE];
} EngineHookCache;

static void engine_call_hook(LcPolicy *policy, LcHook hook,
							 const LcUserRow *row, EngineHookCache *cache);
static TimestampTz engine_backoff(TimestampTz now, int retries);
static void engine_special_groups(LcChange *changes, LcUserRow **rows,
								  LcPolicy **policies, LcOutcome **outcomes,
								  int n, TimestampTz now, const char *actor,
								  LcTickResult *result);
static bool engine_special_try(LcChange *changes, LcUserRow **rows,
							   LcPolicy **policies, LcOutcome **outcomes,
							   int n, TimestampTz now, const char *actor,
							   ErrorData **error);

/*
 * Fill a change (the row update, history and message) from an outcome.
 */
void
engine_change(LcChange *c, const LcUserRow *row, const LcPolicy *policy,
			  LcEvent event, const LcOutcome *o, TimestampTz due_at)
{
	memset(c, 0, sizeof(*c));
	c->id = row->id;
	c->shard = row->shard;
	c->graph = policy->graph;
	c->from = row->user.state;
	c->to = o->to;
	c->state_since = o->state_since;
	c->state_due_at = o->state_due_at;
	c->last_seen = o->last_seen;
	c->step = o->step;
	c->held = o->held;
	c->hold_reason = o->held ? row->hold_reason : NULL;
	c->hold_until = o->held ? o->hold_until : 0;
	c->next_at = o->next_at;
	c->next_event = o->next_event;
	c->deadline_at = o->deadline_at;
	c->deadline_event = o->deadline_event;
	c->event = o->transition ? machine_event_name(policy->graph, o->history_event) : NULL;
	c->due_at = due_at;
	c->message = o->message;
	c->channel = policy->channel;
	c->archive_at = o->archive_at;
	c->detail = NULL;
}

/*
 * Call one of the application's hooks with (subject, tenant).  Its result
 * is ignored.  Every hook call, from the API or a batch, goes through
 * here.  cache (may be NULL) keeps the looked-up function for the next
 * calls of the same group; it lives in CurrentMemoryContext and must not
 * outlive the subtransaction.
 *
 * The hook is sandboxed as PostgreSQL sandboxes index expressions and
 * maintenance commands: it runs as the owner of its function (never as
 * the extension's owner or the worker; lifecycle_define_policy() requires
 * the definer to have the owner's privileges) with
 * SECURITY_RESTRICTED_OPERATION, inside a GUC nest level of its own that
 * is unwound when it returns, so nothing it sets (search_path, role, any
 * setting) outlives it.  Lifecycle functions it calls act as its owner
 * (acting.c).  An error restores the user id and the settings at
 * (sub)transaction abort.
 *
 * The hook's own error may carry personal data (it is the application's
 * text): it is not raised as it is, but kept in engine_state for the
 * scheduler to record on the user row, and replaced by an error that
 * names the hook and the policy only.
 */
static void
engine_call_hook(LcPolicy *policy, LcHook hook, const LcUserRow *row,
				 EngineHookCache *cache)
{
	Oid			fn = policy_hook_oid(policy, hook);
	FmgrInfo	local_flinfo;
	FmgrInfo   *flinfo = &local_flinfo;
	HeapTuple	proctup;
	Oid			owner = InvalidOid;
	Oid			save_userid;
	int			save_sec_context;
	int			slot = -1;
	int			save_nestlevel;
	Oid			save_hook_owner;
	MemoryContext oldcxt = CurrentMemoryContext;

	LOCAL_FCINFO(fcinfo, 2);

	if (hook < 0 || policy->hooks[hook] == NULL)
		return;
	if (!OidIsValid(fn) || !SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s hook of policy \"%s\" version %d no longer exists",
						machine_hook_name(policy->graph, hook), policy->name, policy->version),
				 errdetail("The policy was defined with function %s, which has been dropped since.",
						   policy->hooks[hook]),
				 errhint("Define a new version of the policy naming an existing function.")));
	if (cache != NULL)
	{
		for (int i = 0; i < cache->n; i++)
			if (cache->fn[i] == fn)
				slot = i;
	}
	if (slot >= 0)
	{
		flinfo = &cache->flinfo[slot];
		owner = cache->owner[slot];
	}
	else
	{
		proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
		if (!HeapTupleIsValid(proctup))
			elog(ERROR, "cache lookup failed for function %u", fn);
		owner = ((Form_pg_proc) GETSTRUCT(proctup))->proowner;
		ReleaseSysCache(proctup);
		if (cache != NULL && cache->n < ENGINE_HOOK_CACHE)
		{
			slot = cache->n++;
			cache->fn[slot] = fn;
			cache->owner[slot] = owner;
			flinfo = &cache->flinfo[slot];
		}
		fmgr_info(fn, flinfo);
	}
	InitFunctionCallInfoData(*fcinfo, flinfo, 2, DEFAULT_COLLATION_OID,
							 NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(row->subject);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(row->tenant);
	fcinfo->args[1].isnull = false;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	save_hook_owner = acting_hook_enter(owner);
	PG_TRY();
	{
		SetUserIdAndSecContext(owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		save_nestlevel = NewGUCNestLevel();
		(void) FunctionCallInvoke(fcinfo);
		AtEOXact_GUC(false, save_nestlevel);
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		acting_hook_exit(save_hook_owner);
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (engine_state.hook_error != NULL)
			pfree(engine_state.hook_error);
		engine_state.hook_error = MemoryContextStrdup(TopMemoryContext,
													  edata->message ? edata->message : "");
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("%s hook of policy \"%s\" failed", machine_hook_name(policy->graph, hook),
						policy->name),
				 errdetail("The hook's own error is not shown: it may contain personal data."),
				 errhint("The scheduler records it for the user in lifecycle.overdue.")));
	}
	PG_END_TRY();
	acting_hook_exit(save_hook_owner);
}
/*
 * The side effects that follow a written transition: the hook, and for an
 * erasure the removal of personal data (after the erase hook, which still
 * needs the subject).  Returns the evidence id of an erasure, else 0.  An
 * erasure without a reason (a workflow's own call into erased, through
 * lifecycle_signal()) gives the event's name as its evidence's reason.
 */
int64
engine_effects(const LcUserRow *row, LcPolicy *policy, const LcOutcome *o,
			   const char *reason, const char *actor, TimestampTz now)
{
	if (o->hook != LC_HOOK_NONE)
		engine_call_hook(policy, o->hook, row, NULL);
	if (o->erase)
		return store_erase(row->id,
						   machine_state_name(policy->graph, row->user.state),
						   reason != NULL ? reason :
						   machine_event_name(policy->graph, o->history_event),
						   actor, now);
	return 0;
}

/*
 * engine_effects() for the n instances of one subject that a
 * subject-wide lifecycle_erase() has just moved to erased (their
 * transitions written): every erase hook, in the order of rows (one hook
 * cache for all), then the personal data of all of them in one statement
 * and one evidence row each.  Returns the evidence id of rows[0].
 */
int64
engine_erase_effects(const LcUserRow *rows, LcPolicy **policies,
					 const LcOutcome *o, int n, const char *reason,
					 const char *actor, TimestampTz now)
{
	EngineHookCache *hooks = palloc0(sizeof(EngineHookCache));
	int64	   *ids = palloc(sizeof(int64) * n);
	const char **before = palloc(sizeof(char *) * n);

	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (o[i].hook != LC_HOOK_NONE)
			engine_call_hook(policies[i], o[i].hook, &rows[i], hooks);
		ids[i] = rows[i].id;
		before[i] = machine_state_name(policies[i]->graph, rows[i].user.state);
	}
	return store_erase_batch(ids, before, n, reason, actor, now);
}

/*
 * Next attempt after a failed transition: 1 minute doubling to 1 hour.
 */
static TimestampTz
engine_backoff(TimestampTz now, int retries)
{
	return now + backoff_ms(60 * 1000, 3600 * 1000, retries) * 1000;
}

/*
 * The outcome of a due row's timer at "now": its transition, or for a
 * stale timer (its event no longer allowed in the row's state) the row
 * re-armed from its state, with no history.
 */
static void
engine_timer_outcome(const LcPolicy *policy, const LcUserRow *row,
					 TimestampTz now, LcOutcome *o)
{
	machine_apply(policy, &row->user, row->next_event, now, o);
	if (o->allowed)
		return;
	memset(o, 0, sizeof(*o));
	o->allowed = true;
	o->to = row->user.state;
	o->hook = LC_HOOK_NONE;
	o->message = LC_MSG_NONE;
	o->history_event = LC_EV_NONE;
	o->state_since = row->user.state_since;
	o->state_due_at = row->user.state_due_at;
	o->last_seen = row->user.last_seen;
	o->step = row->user.step;
	o->held = row->user.held;
	o->hold_until = row->user.hold_until;
	o->deadline_at = machine_deadline(policy, &row->user, &o->deadline_event);
	machine_next_timer(policy, &row->user, &o->next_at, &o->next_event);
	if (o->next_at != 0 && o->next_at <= row->next_at)
		o->next_at = 0;			/* never loop on the same instant */
}

/*
 * Fire the due timers of one instance whose row the caller has locked, at
 * "now", as engine_tick_batch() fires them (a call on an instance whose
 * timer is due, lifecycle_signal(), takes effect on the state they lead
 * to: the worker's lateness decides nothing).  While its timer is due
 * (next_at <= now; a held instance's is the lapse of its hold), the timer
 * fires: the machine's outcome written by store_apply() with the time it
 * was due (history due_at, messages, counts, the lateness principle), as
 * the worker's actor; a transition with a hook or an erasure is carried
 * out as the worker carries it out (engine_special_try(): the hook, then
 * the personal data removed, in a subtransaction).  If that fails (the
 * hook raised), it is rolled back and the firing stops there: the
 * instance stays due, as it does for the worker (which records the error
 * and backs off), and the caller acts on it as it is.  *row is the row
 * after them, locked.  Returns false when they erased the instance.
 */
bool
engine_fire_due(LcUserRow *row, TimestampTz now)
{
	char	   *tenant = row->tenant;
	char	   *subject = row->subject;
	char	   *workflow = row->workflow;
	char	   *key = row->key;

	for (int fired = 0; row->next_at != 0 && row->next_at <= now; fired++)
	{
		LcPolicy   *policy = policy_get(row->policy, row->policy_version);
		LcOutcome	o;
		LcChange	change;

		CHECK_FOR_INTERRUPTS();
		if (fired >= 10000)
			elog(ERROR, "lifecycle instance " INT64_FORMAT " stays due after %d timers",
				 row->id, fired);
		engine_timer_outcome(policy, row, now, &o);
		engine_change(&change, row, policy, row->next_event, &o, row->next_at);
		if (o.hook != LC_HOOK_NONE || o.erase)
		{
			LcUserRow  *rows[1] = {row};
			LcPolicy   *policies[1] = {policy};
			LcOutcome  *outcomes[1] = {&o};
			ErrorData  *edata = NULL;

			if (!engine_special_try(&change, rows, policies, outcomes, 1, now,
									LC_WORKER_ACTOR, &edata))
			{
				FreeErrorData(edata);
				return true;	/* left due, as the worker leaves it */
			}
			if (o.erase)
				return false;
		}
		else
			store_apply(&change, 1, now, LC_WORKER_ACTOR);
		if (!store_instance_lookup(tenant, subject, workflow, key, true, row))
			elog(ERROR, "lifecycle instance vanished under its lock");
	}
	return true;
}

/*
 * Write the lapse of a hold whose end has passed on one instance whose row
 * the caller has locked, as the worker writes it (DESIGN "Holds": a hold
 * whose until has passed counts as lapsed everywhere at once, whether or
 * not the worker has written its hold_lapse yet): the machine's hold_lapse
 * event, due at the hold's end, by the worker's actor, through
 * store_apply() (history, counts, timers re-armed from their anchors).  A
 * call that a hold refuses (lifecycle_erase()) writes it first and then
 * acts on the released instance; the timers it re-arms are left to the
 * worker.  Returns whether it wrote one (the caller then reads the row
 * again).
 */
bool
engine_fire_lapse(const LcUserRow *row, TimestampTz now)
{
	LcPolicy   *policy;
	LcOutcome	o;
	LcChange	change;

	if (!row->user.held || row->user.hold_until == 0 ||
		row->user.hold_until > now)
		return false;
	policy = policy_get(row->policy, row->policy_version);
	machine_apply(policy, &row->user, LC_EV_HOLD_LAPSE, now, &o);
	if (!o.allowed)
		elog(ERROR, "lifecycle instance " INT64_FORMAT " refuses the lapse of its hold",
			 row->id);
	engine_change(&change, row, policy, LC_EV_HOLD_LAPSE, &o,
				  row->user.hold_until);
	store_apply(&change, 1, now, LC_WORKER_ACTOR);
	return true;
}

/*
 * Advance up to "limit" users due at "due_by".
 */
void
engine_tick_batch(TimestampTz due_by, int limit, const char *actor,
				  LcTickResult *result)
{
	TimestampTz now;
	LcUserRow  *rows;
	LcChange   *bulk;
	LcOutcome  *outcomes;
	LcPolicy  **policies;
	int		   *special;
	int			nbulk = 0;
	int			nspecial = 0;
	int			n;

	memset(result, 0, sizeof(*result));
	n = store_due_users(due_by, limit, &rows);
	result->selected = n;
	if (n == 0)
		return;

	/*
	 * The batch is locked: its changes take effect now, at least "now" of
	 * the selection (history.at in the order of the row locks).
	 */
	now = clock_now_precise();

	bulk = palloc(sizeof(LcChange) * n);
	outcomes = palloc(sizeof(LcOutcome) * n);
	policies = palloc(sizeof(LcPolicy *) * n);
	special = palloc(sizeof(int) * n);

	for (int i = 0; i < n; i++)
	{
		LcUserRow  *row = &rows[i];
		LcOutcome  *o = &outcomes[i];

		CHECK_FOR_INTERRUPTS();
		policies[i] = policy_get(row->policy, row->policy_version);
		/* a stale timer re-arms from the state, writes no history */
		engine_timer_outcome(policies[i], row, now, o);
		if (o->hook != LC_HOOK_NONE || o->erase)
			special[nspecial++] = i;
		else
		{
			engine_change(&bulk[nbulk++], row, policies[i], row->next_event,
						  o, row->next_at);
			if (o->transition)
				result->transitions++;
		}
	}

	store_apply(bulk, nbulk, now, actor);

	if (nspecial > 0)
	{
		LcChange   *changes = palloc(sizeof(LcChange) * nspecial);
		LcUserRow **srows = palloc(sizeof(LcUserRow *) * nspecial);
		LcPolicy  **spolicies = palloc(sizeof(LcPolicy *) * nspecial);
		LcOutcome **soutcomes = palloc(sizeof(LcOutcome *) * nspecial);

		for (int k = 0; k < nspecial; k++)
		{
			int			i = special[k];

			engine_change(&changes[k], &rows[i], policies[i],
						  rows[i].next_event, &outcomes[i], rows[i].next_at);
			srows[k] = &rows[i];
			spolicies[k] = policies[i];
			soutcomes[k] = &outcomes[i];
		}
		engine_special_groups(changes, srows, spolicies, soutcomes, nspecial,
							  now, actor, result);
	}
}

/*
 * Carry out n transitions with hooks or erasures: all of them in one
 * subtransaction; if it fails, each half on its own, recursively, until
 * the failing users stand alone.  A single user that fails keeps its
 * timer, gets a retry time and its error.
 */
static void
engine_special_groups(LcChange *changes, LcUserRow **rows,
					  LcPolicy **policies, LcOutcome **outcomes, int n,
					  TimestampTz now, const char *actor, LcTickResult *result)
{
	ErrorData  *edata = NULL;
	int			half;

	CHECK_FOR_INTERRUPTS();
	if (engine_special_try(changes, rows, policies, outcomes, n, now, actor,
						   &edata))
	{
		result->transitions += n;
		return;
	}
	if (n > 1)
	{
		FreeErrorData(edata);
		half = n / 2;
		engine_special_groups(changes, rows, policies, outcomes, half,
							  now, actor, result);
		engine_special_groups(changes + half, rows + half, policies + half,
							  outcomes + half, n - half, now, actor, result);
		return;
	}

	/*
	 * The user row gets the hook's own text (it is erased with the user);
	 * shared memory and the log get the hook, the policy and the user id.
	 */
	store_record_failure(rows[0]->id, engine_backoff(now, rows[0]->retries),
						 engine_state.hook_error != NULL ?
						 engine_state.hook_error : edata->message);
	result->errors++;
	if (engine_state.hook_error != NULL)
		result->last_error =
			psprintf("%s hook of policy \"%s\" failed for user " INT64_FORMAT ", see lifecycle.overdue",
					 machine_hook_name(policies[0]->graph, outcomes[0]->hook), rows[0]->policy,
					 rows[0]->id);
	else
		result->last_error =
			psprintf("transition of user " INT64_FORMAT " failed (SQLSTATE %s), see lifecycle.overdue",
					 rows[0]->id, unpack_sql_state(edata->sqlerrcode));
	ereport(DEBUG1,
			(errmsg_internal("lifecycle transition of user " INT64_FORMAT " failed (SQLSTATE %s)",
							 rows[0]->id, unpack_sql_state(edata->sqlerrcode))));
	FreeErrorData(edata);
}

/*
 * One attempt at a group, in a subtransaction: the transitions in one
 * statement, every hook (through engine_call_hook(), in due order), then
 * the erasures in one statement.  True when it committed; otherwise the
 * subtransaction is rolled back and *error holds the error, allocated in
 * the caller's context.  Working memory lives in a context of its own,
 * freed before returning.
 */
static bool
engine_special_try(LcChange *changes, LcUserRow **rows, LcPolicy **policies,
				   LcOutcome **outcomes, int n, TimestampTz now,
				   const char *actor, ErrorData **error)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext workcxt;
	volatile bool ok = true;

	workcxt = AllocSetContextCreate(oldcxt, "lifecycle hook group",
									ALLOCSET_DEFAULT_SIZES);
	if (engine_state.hook_error != NULL)
	{
		pfree(engine_state.hook_error);
		engine_state.hook_error = NULL;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(workcxt);
	PG_TRY();
	{
		int64	   *ids = palloc(sizeof(int64) * n);
		const char **before = palloc(sizeof(char *) * n);
		int			nerase = 0;
		EngineHookCache *hooks = palloc0(sizeof(EngineHookCache));

		store_apply(changes, n, now, actor);
		for (int k = 0; k < n; k++)
		{
			CHECK_FOR_INTERRUPTS();
			if (outcomes[k]->hook != LC_HOOK_NONE)
				engine_call_hook(policies[k], outcomes[k]->hook, rows[k],
								 hooks);
			if (outcomes[k]->erase)
			{
				ids[nerase] = rows[k]->id;
				before[nerase] = machine_state_name(policies[k]->graph,
												 rows[k]->user.state);
				nerase++;
			}
		}
		store_erase_batch(ids, before, nerase, "retention policy", actor, now);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		*error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextDelete(workcxt);
	return ok;
}
