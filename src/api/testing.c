/*-------------------------------------------------------------------------
 *
 * testing.c
 *	  Helpers for the test suites only (granted to lifecycle_admin).
 *
 * IDENTIFICATION
 *	  src/testing.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "cache.h"
#include "machine.h"
#include "policy.h"
#include "render.h"
#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_machine_step);
PG_FUNCTION_INFO_V1(lifecycle_render_mail);

/*
 * lifecycle._machine_step(state, event, held, policy) -> the machine's
 * outcome as a record, for tests of the pure state machine.  The times
 * are relative to a fixed epoch so results are stable.
 */
Datum
lifecycle_machine_step(PG_FUNCTION_ARGS)
{
	char	   *state = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *event = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		held = PG_GETARG_BOOL(2);
	char	   *policy_name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {0};
	LcUser		user;
	LcOutcome	o;
	LcEvent		ev = LC_EV_NONE;
	LcPolicy   *policy;
	const LcGraph *g;
	int			version;
	TimestampTz epoch = 0;		/* 2000-01-01 */

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	SPI_connect();
	version = store_policy_latest(policy_name, NULL);
	if (version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", policy_name)));
	policy = policy_get(policy_name, version);
	g = policy->graph;

	ev = machine_event_from_name(g, event);
	if (ev != LC_EV_NONE && g->events[ev].kind == LC_KIND_RECORD)
		ev = LC_EV_NONE;
	if (ev == LC_EV_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown event \"%s\"", event)));
	if (graph_state_id(g, state) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown state \"%s\"", state)));

	memset(&user, 0, sizeof(user));
	user.state = graph_state_id(g, state);
	user.state_since = epoch;
	user.last_seen = epoch;
	user.held = held;
	machine_apply(policy, &user, ev, epoch + USECS_PER_DAY, &o);
	SPI_finish();

	values[0] = BoolGetDatum(o.allowed);
	values[1] = BoolGetDatum(o.noop);
	if (o.allowed && !o.noop)
		values[2] = CStringGetTextDatum(machine_state_name(g, o.to));
	else
		nulls[2] = true;
	if (o.message != LC_MSG_NONE)
		values[3] = CStringGetTextDatum(machine_message_name(g, o.message));
	else
		nulls[3] = true;
	if (o.hook != LC_HOOK_NONE)
		values[4] = CStringGetTextDatum(machine_hook_name(g, o.hook));
	else
		nulls[4] = true;
	values[5] = BoolGetDatum(o.erase);
	if (o.next_event != LC_EV_NONE && o.allowed && !o.noop)
		values[6] = CStringGetTextDatum(machine_event_name(g, o.next_event));
	else
		nulls[6] = true;
	if (o.hint)
		values[7] = CStringGetTextDatum(o.hint);
	else
		nulls[7] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  values, nulls)));
}

/*
 * lifecycle._render_mail(workflow, message, payload, options, version) ->
 * the e-mail the sender would send for a message of that workflow version
 * (the latest when version is NULL) with that payload through an smtp
 * channel with those options: the same render_mail() over the template
 * of the same compiled graph.  42704 for an unknown workflow, 22023 for a
 * message the workflow does not declare.
 */
Datum
lifecycle_render_mail(PG_FUNCTION_ARGS)
{
	char	   *workflow;
	char	   *message;
	Jsonb	   *payload;
	Jsonb	   *options;
	int			version = 0;
	const LcGraph *g;
	int			m;
	char	   *from = NULL;
	char	   *mail;
	size_t		len;
	JsonbValue	v;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null",
							i == 0 ? "workflow" : i == 1 ? "message" :
							i == 2 ? "payload" : "options")));
	workflow = text_to_cstring(PG_GETARG_TEXT_PP(0));
	message = text_to_cstring(PG_GETARG_TEXT_PP(1));
	payload = PG_GETARG_JSONB_P(2);
	options = PG_GETARG_JSONB_P(3);
	if (!JB_ROOT_IS_OBJECT(payload) || !JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload and options must be JSON objects")));

	SPI_connect();
	if (!PG_ARGISNULL(4))
		version = PG_GETARG_INT32(4);
	else
		version = cache_workflow_latest(workflow);
	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", workflow)));
	g = cache_graph(workflow, version);
	m = graph_message_id(g, message);
	if (m < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workflow \"%s\" version %d declares no message \"%s\"",
						workflow, version, message)));
	if (getKeyJsonValueFromContainer(&options->root, "from", 4, &v) != NULL &&
		v.type == jbvString)
		from = pnstrdup(v.val.string.val, v.val.string.len);
	mail = render_mail(message, 1, payload, options, g->messages[m].subject,
					   g->messages[m].text, from ? from : "lifecycle@localhost",
					   &len);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(mail, (int) len));
}
