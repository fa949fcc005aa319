/*-------------------------------------------------------------------------
 *
 * instances.c
 *	  Instances of any workflow: lifecycle_start() and lifecycle_signal().
 *
 * An instance is one run of one workflow version for one subject,
 * identified by (tenant, subject, workflow, key) and pinned to the policy
 * version it started with (which names its workflow version).  Starting
 * applies the workflow's start event to a new row, written by the same
 * statement as an invitation (store_user_insert()); a signal is an event
 * applied as the user lifecycle's named functions apply theirs
 * (api_instance_event()).  The subject's e-mail, region and attrs are
 * shared by all of its live instances.
 *
 * IDENTIFICATION
 *	  src/api/instances.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "engine.h"
#include "machine.h"
#include "policy.h"
#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_start);
PG_FUNCTION_INFO_V1(lifecycle_signal);
PG_FUNCTION_INFO_V1(lifecycle_trace_id);

/*
 * lifecycle._trace_id(): a new instance's trace id (the default of
 * lifecycle.users.trace_id), a random version 4 UUID.  Drawn from a
 * generator seeded once per process from the operating system's strong
 * random source, not from pg_strong_random() for every row: the trace id
 * is an identifier, not a secret, and gen_random_uuid() as the column's
 * default cost every insert of an instance about 4 us, a third of an
 * adoption's time per row (0.3.0 "no regression", bench/RESULTS.md).
 */
Datum
lifecycle_trace_id(PG_FUNCTION_ARGS)
{
	static pg_prng_state state;
	static int	seeded_pid = 0;
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	uint64		hi,
				lo;

	if (seeded_pid != MyProcPid)
	{
		if (!pg_prng_strong_seed(&state))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not seed the trace id generator")));
		seeded_pid = MyProcPid;
	}
	hi = pg_prng_uint64(&state);
	lo = pg_prng_uint64(&state);
	for (int i = 0; i < 8; i++)
	{
		uuid->data[i] = (unsigned char) (hi >> (56 - 8 * i));
		uuid->data[8 + i] = (unsigned char) (lo >> (56 - 8 * i));
	}
	/* RFC 4122: version 4 (random), variant 10 */
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;
	PG_RETURN_UUID_P(uuid);
}

/*
 * An instance's key: not NULL (22004), '' by default, at most LC_MAX_KEY
 * bytes (22023).  Not echoed: the application's key may be personal.
 */
static char *
instances_key_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *key;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key must not be null"),
				 errhint("The default key is ''.")));
	key = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strlen(key) > LC_MAX_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key is too long"),
				 errdetail("The limit is %d bytes; this one has %zu.",
						   LC_MAX_KEY, strlen(key))));
	return key;
}

/*
 * The policy an instance starts with: the one named, else the workflow's
 * own (the user workflow's is "default").  42704 for an unknown workflow
 * or policy; 22023 for a policy of another workflow.
 */
static LcPolicy *
instances_policy(const char *workflow, const char *policy_name)
{
	LcPolicy   *policy;

	if (cache_workflow_latest(workflow) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", workflow),
				 errhint("Define it with lifecycle_define_workflow().")));
	if (policy_name == NULL)
		policy_name = strcmp(workflow, LC_USER_WORKFLOW) == 0 ? "default" : workflow;
	policy = policy_get(policy_name, policy_latest(policy_name));
	if (strcmp(policy->graph->name, workflow) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy \"%s\" belongs to workflow \"%s\", not to \"%s\"",
						policy->name, policy->graph->name, workflow),
				 errhint("Name a policy of workflow \"%s\", or none for its own.",
						 workflow)));
	return policy;
}

/*
 * lifecycle_start(workflow, subject, tenant, key, policy, email, region,
 *				   attrs, data) -> instance id
 *
 * Starting a running instance returns its id and changes nothing (so a
 * retried call is harmless); once an instance is erased the same key
 * starts a new one.  The user workflow runs once per subject (key '').
 * An instance started for a subject on legal hold starts held.
 */
Datum
lifecycle_start(PG_FUNCTION_ARGS)
{
	char	   *workflow = args_text_arg(fcinfo, 0, "workflow", NAMEDATALEN - 1);
	char	   *subject = args_text_arg(fcinfo, 1, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 2, "tenant", LC_MAX_TENANT);
	char	   *key = instances_key_arg(fcinfo, 3);
	char	   *policy_name = args_opt_text_arg(fcinfo, 4, "policy", NAMEDATALEN - 1);
	char	   *email = args_opt_text_arg(fcinfo, 5, "email", LC_MAX_EMAIL);
	char	   *region = args_opt_text_arg(fcinfo, 6, "region", LC_MAX_REGION);
	Jsonb	   *attrs = PG_ARGISNULL(7) ? NULL : args_object_arg(fcinfo, 7, "attrs");
	Jsonb	   *data = PG_ARGISNULL(8) ? NULL : args_object_arg(fcinfo, 8, "data");
	const char *actor = acting_actor();
	LcPolicy   *policy;
	LcInvite	inv;
	LcUserRow	row;
	LcOutcome	o;
	LcUser		none = {.state = LC_STATE_NONE};
	TimestampTz now;
	int64		id = 0;
	bool		others = false;

	if (email != NULL)
		args_check_email(email);
	if (strcmp(workflow, LC_USER_WORKFLOW) == 0 && key[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the user workflow runs once per subject"),
				 errhint("Start it with key '' (the default).")));

	SPI_connect();
	acting_check_tenant(tenant);
	policy = instances_policy(workflow, policy_name);

	/* Running already: its id, whatever the arguments (idempotent). */
	if (store_instance_lookup(tenant, subject, workflow, key, false, &row))
	{
		SPI_finish();
		PG_RETURN_INT64(row.id);
	}

	now = clock_now_precise();
	machine_apply(policy, &none, policy->graph->start_event, now, &o);
	if (!o.allowed)
		elog(ERROR, "workflow \"%s\" refuses its own start event", workflow);

	memset(&inv, 0, sizeof(inv));
	inv.tenant = tenant;
	inv.subject = subject;
	inv.email = email;
	inv.attrs = attrs;
	inv.region = region;
	inv.policy = policy->name;
	inv.policy_version = policy->version;
	inv.channel = policy->channel;
	inv.next_at = o.next_at;
	inv.next_event = o.next_event == LC_EV_NONE ? NULL :
		machine_event_name(policy->graph, o.next_event);
	inv.state = machine_state_name(policy->graph, o.to);
	inv.event = machine_event_name(policy->graph, policy->graph->start_event);
	inv.message = machine_message_name(policy->graph, o.message);
	inv.deadline_at = o.deadline_at;
	inv.deadline_event = o.deadline_event;
	inv.workflow = workflow;
	inv.workflow_version = policy->graph->version;
	inv.key = key;
	inv.data = data;
	/* a start message announcing a deadline (dsar's receipt) carries it */
	inv.archive_at = o.archive_at;

	/*
	 * Insert first; on conflict a concurrent start won (its id), unless it
	 * was erased in between (insert again).
	 */
	for (int attempt = 0; attempt < 2 && id == 0; attempt++)
	{
		id = store_user_insert(&inv, now, actor, &others);
		if (id == 0 && store_instance_lookup(tenant, subject, workflow, key,
											 false, &row))
		{
			SPI_finish();
			PG_RETURN_INT64(row.id);
		}
	}
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("instance was started and erased concurrently"),
				 errhint("Retry the call.")));

	/* A held subject's new instance starts held. */
	if (others)
		api_hold_new_instance(tenant, subject, id, actor);

	/* A hook on the start edge runs in this transaction, as any other. */
	if (o.hook != LC_HOOK_NONE)
	{
		if (!store_instance_lookup(tenant, subject, workflow, key, true, &row))
			elog(ERROR, "lifecycle instance " INT64_FORMAT " vanished", id);
		(void) engine_effects(&row, policy, &o, NULL, actor, now);
	}
	SPI_finish();
	PG_RETURN_INT64(id);
}

/*
 * lifecycle_signal(workflow, subject, event, tenant, key) -> new state
 */
Datum
lifecycle_signal(PG_FUNCTION_ARGS)
{
	char	   *workflow = args_text_arg(fcinfo, 0, "workflow", NAMEDATALEN - 1);
	char	   *subject = args_text_arg(fcinfo, 1, "subject", LC_MAX_SUBJECT);
	char	   *event = args_text_arg(fcinfo, 2, "event", NAMEDATALEN - 1);
	char	   *tenant = args_text_arg(fcinfo, 3, "tenant", LC_MAX_TENANT);
	char	   *key = instances_key_arg(fcinfo, 4);
	int64		evidence = 0;
	const LcGraph *g;
	LcState		st;

	st = api_instance_event(tenant, subject, workflow, key, event, NULL, true,
							&evidence, &g);
	PG_RETURN_TEXT_P(cstring_to_text(machine_state_name(g, st)));
}
