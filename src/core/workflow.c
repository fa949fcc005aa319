/*-------------------------------------------------------------------------
 *
 * workflow.c
 *	  The workflow language (docs/WORKFLOWS.md): a JSON definition parsed,
 *	  validated, proved and compiled into the graph the machine runs
 *	  (graph.h).  Pure: no SPI, no I/O.
 *
 * Every refusal is SQLSTATE 22023 whose message names the JSON path of
 * what is wrong ("states.received.timer.after", "events.extend[1].hint").
 * Once the shape is valid, four things are proved (DESIGN, "What is proved
 * when a workflow is defined"): every state is reachable from the start
 * event; every state reaches "erased" by timers alone; every reminder
 * falls inside its window for every start date, with the timers' own
 * calendar arithmetic, at the definition's defaults; every name resolves.
 *
 * The compiled graph: state 0 is "none", then the definition's states (in
 * the definition's key order, which is jsonb's), then "erased"; the
 * reserved events at the ids of LcReservedEvent, then the definition's
 * calls, then its timers and reminders (in state order); edges are the
 * calls', then one per timer and reminder of each state, then the
 * reserved hold, release, hold_lapse and erase edges of every live state.
 *
 * IDENTIFICATION
 *	  src/core/workflow.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "graph.h"
#include "render.h"

/* The timers' calendar arithmetic (machine.c; machine.h's names clash). */
extern TimestampTz machine_add(TimestampTz ts, const Interval *iv);
extern TimestampTz machine_sub(TimestampTz ts, const Interval *iv);

#define WF_MAX_REMINDERS	16
#define WF_DAY_2000			0	/* TimestampTz of 2000-01-01 */
#define WF_DAY_2095			((TimestampTz) (95 * 365 + 24) * USECS_PER_DAY)

static const char *const wf_reserved_events[LC_NUM_RESERVED_EVENTS] = {
	[LC_EV_HOLD] = "hold",
	[LC_EV_RELEASE] = "release",
	[LC_EV_HOLD_LAPSE] = "hold_lapse",
	[LC_EV_ERASE] = "erase",
	[LC_EV_EXPORT] = "export",
	[LC_EV_UPDATE] = "update",
	[LC_EV_MIGRATE] = "migrate",
	[LC_EV_ADOPT] = "adopt",
	[LC_EV_REMINDER_SKIPPED] = "reminder_skipped",
};

static const LcEventKind wf_reserved_kinds[LC_NUM_RESERVED_EVENTS] = {
	[LC_EV_HOLD] = LC_KIND_CALL,
	[LC_EV_RELEASE] = LC_KIND_CALL,
	[LC_EV_HOLD_LAPSE] = LC_KIND_TIMER,
	[LC_EV_ERASE] = LC_KIND_CALL,
	[LC_EV_EXPORT] = LC_KIND_RECORD,
	[LC_EV_UPDATE] = LC_KIND_RECORD,
	[LC_EV_MIGRATE] = LC_KIND_RECORD,
	[LC_EV_ADOPT] = LC_KIND_RECORD,
	[LC_EV_REMINDER_SKIPPED] = LC_KIND_RECORD,
};

static const char *const wf_reserved_roles[LC_NUM_RESERVED_EVENTS] = {
	[LC_EV_HOLD] = "admin",
	[LC_EV_RELEASE] = "admin",
	[LC_EV_HOLD_LAPSE] = "worker",
	[LC_EV_ERASE] = "app",
	[LC_EV_EXPORT] = "app",
	[LC_EV_UPDATE] = "app",
	[LC_EV_MIGRATE] = "admin",
	[LC_EV_ADOPT] = "admin",
	[LC_EV_REMINDER_SKIPPED] = "worker",
};

static const char *const wf_anchor_names[LC_NUM_ANCHORS] = {
	[LC_ANCHOR_ENTERED] = "entered",
	[LC_ANCHOR_DUE] = "due",
	[LC_ANCHOR_LAST_SEEN] = "last_seen",
	[LC_ANCHOR_STARTED] = "started",
};

/* A policy's own keys: a parameter may not take their names. */
static const char *const wf_policy_keys[] = {
	"workflow", "channel", "hooks", "touch_granularity", "history_retention",
	"outbox_retention", "max_retention"
};

/* The hook the reserved erase event runs in every workflow (as 0.2.0). */
#define WF_ERASE_HOOK "erase"

/* One key and value of a JSON object, or one element of an array. */
typedef struct WfPair
{
	char	   *key;
	JsonbValue	val;
} WfPair;

/* What the parser keeps beside the graph while compiling. */
typedef struct WfBuild
{
	LcGraph    *g;
	int			n_edges_max;
	int			n_events_max;
	int			n_hooks_max;
	const char **event_paths;	/* where each event is first named */
	bool	   *event_reminder; /* a reminder's event, not a timer's */
	bool	   *list_before;	/* per param: used by a "before" list */
	bool	   *list_after;		/* per param: used by an "after" list */
	const char **reminder_paths;	/* per state: its reminders' path */
	const char **after_paths;	/* per state: its timer's after path */
	const char **state_paths;	/* per state: "states.NAME" */
} WfBuild;

static void wf_error(const char *path, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();
static bool wf_is_object(const JsonbValue *v);
static bool wf_is_array(const JsonbValue *v);
static WfPair *wf_pairs(const JsonbValue *v, const char *path, int *n);
static WfPair *wf_elems(const JsonbValue *v, const char *path, int *n);
static char *wf_string(const JsonbValue *v, const char *path, const char *what);
static void wf_check_name(const char *name, const char *path, const char *what);
static Interval *wf_try_interval(const char *str);
static void wf_parse_interval(const char *str, const char *path, Interval *out);
static int	wf_interval_cmp(const Interval *a, const Interval *b);
static int	wf_param_id(const LcGraph *g, const char *name);
static int	wf_hook_id(WfBuild *b, const char *name);
static int	wf_event_add(WfBuild *b, const char *name, LcEventKind kind,
						 const char *role, bool reminder, const char *path);
static LcGraphEdge *wf_edge_new(WfBuild *b);
static void wf_parse_params(WfBuild *b, const JsonbValue *v);
static void wf_parse_messages(WfBuild *b, const JsonbValue *v);
static void wf_parse_state_names(WfBuild *b, WfPair *states, int n);
static void wf_parse_timer(WfBuild *b, int state, const JsonbValue *v,
						   const char *path);
static void wf_parse_duration(WfBuild *b, const JsonbValue *v,
							  const char *path, LcDuration *d);
static void wf_parse_reminders(WfBuild *b, int state, const JsonbValue *v,
							   const char *path, LcReminderSpec *rs);
static void wf_parse_events(WfBuild *b, WfPair *events, int n);
static void wf_generate_edges(WfBuild *b);
static void wf_prove(WfBuild *b);
static void wf_check_reminders(const LcGraph *g, const LcParamValues *pv,
							   int state, const char *const *paths,
							   const char *const *after_paths);
static int64 wf_longest(const LcParamValues *pv, const LcDuration *d);
static void wf_sort_list(Interval *list, int n, bool before);
static Jsonb *wf_normalize(Jsonb *def);
static void wf_policy_invalid(const char *key, const char *msg) pg_attribute_noreturn();
static void wf_policy_interval(const char *key, const char *str, Interval *out);
static void wf_parse_state(WfBuild *b, int state, const JsonbValue *v);

/*
 * Raise 22023 for a definition, naming the JSON path.
 */
static void
wf_error(const char *path, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid workflow definition at %s: %s", path, buf.data),
			 errhint("See docs/WORKFLOWS.md for the workflow language.")));
}

static bool
wf_is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static bool
wf_is_array(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data);
}

/*
 * The keys and values of an object (22023 if v is none), in jsonb's order.
 */
static WfPair *
wf_pairs(const JsonbValue *v, const char *path, int *n)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	x;
	WfPair	   *out;
	int			cap = 8;

	if (!wf_is_object(v))
		wf_error(path, "expected an object");
	out = palloc(sizeof(WfPair) * cap);
	*n = 0;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &x, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (*n == cap)
			{
				cap *= 2;
				out = repalloc(out, sizeof(WfPair) * cap);
			}
			out[*n].key = pnstrdup(x.val.string.val, x.val.string.len);
		}
		else if (tok == WJB_VALUE)
			out[(*n)++].val = x;
	}
	return out;
}

/*
 * The elements of an array (22023 if v is none).
 */
static WfPair *
wf_elems(const JsonbValue *v, const char *path, int *n)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	x;
	WfPair	   *out;
	int			cap = 8;

	if (!wf_is_array(v))
		wf_error(path, "expected an array");
	out = palloc(sizeof(WfPair) * cap);
	*n = 0;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &x, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			out = repalloc(out, sizeof(WfPair) * cap);
		}
		out[*n].key = NULL;
		out[(*n)++].val = x;
	}
	return out;
}

static char *
wf_string(const JsonbValue *v, const char *path, const char *what)
{
	if (v->type != jbvString)
		wf_error(path, "expected %s", what);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A name: [a-z][a-z0-9_]*, at most LC_NAME_MAX bytes.
 */
static void
wf_check_name(const char *name, const char *path, const char *what)
{
	size_t		len = strlen(name);

	if (len == 0 || len > LC_NAME_MAX)
		wf_error(path, "%s must have 1 to %d bytes", what, LC_NAME_MAX);
	if (name[0] < 'a' || name[0] > 'z')
		wf_error(path, "%s must match [a-z][a-z0-9_]*", what);
	for (size_t i = 1; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			  (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			wf_error(path, "%s must match [a-z][a-z0-9_]*", what);
}

/*
 * interval_in, or NULL when the text is not an interval.  interval_in is
 * pure, so its error can be caught and dropped without a subtransaction.
 */
static Interval *
wf_try_interval(const char *str)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Interval   *volatile iv = NULL;

	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												   CStringGetDatum(str),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		iv = NULL;
	}
	PG_END_TRY();
	return iv;
}

static int
wf_interval_cmp(const Interval *a, const Interval *b)
{
	return DatumGetInt32(DirectFunctionCall2(interval_cmp,
											 IntervalPGetDatum(a),
											 IntervalPGetDatum(b)));
}

/*
 * An interval literal: positive in every part, under 200 years (as a
 * policy's intervals).
 */
static void
wf_parse_interval(const char *str, const char *path, Interval *out)
{
	Interval   *iv = wf_try_interval(str);
	Interval	zero;
	Interval	limit;

	if (iv == NULL)
		wf_error(path, "\"%s\" is not an interval", str);
	memset(&zero, 0, sizeof(zero));
	if (wf_interval_cmp(iv, &zero) <= 0 ||
		iv->month < 0 || iv->day < 0 || iv->time < 0)
		wf_error(path, "interval \"%s\" must be positive", str);
	memset(&limit, 0, sizeof(limit));
	limit.month = 200 * MONTHS_PER_YEAR;
	if (wf_interval_cmp(iv, &limit) >= 0)
		wf_error(path, "interval \"%s\" must be less than 200 years", str);
	*out = *iv;
}

static int
wf_param_id(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_params; i++)
		if (strcmp(g->params[i].name, name) == 0)
			return i;
	return -1;
}

static int
wf_hook_id(WfBuild *b, const char *name)
{
	LcGraph    *g = b->g;

	for (int i = 0; i < g->n_hooks; i++)
		if (strcmp(g->hooks[i], name) == 0)
			return i;
	if (g->n_hooks == b->n_hooks_max)
	{
		b->n_hooks_max *= 2;
		g->hooks = repalloc(g->hooks, sizeof(char *) * b->n_hooks_max);
	}
	g->hooks[g->n_hooks] = pstrdup(name);
	return g->n_hooks++;
}

/*
 * Add an event, or find it when a timer or reminder names it again: an
 * event has one kind (a call never shares a name with a timer).
 */
static int
wf_event_add(WfBuild *b, const char *name, LcEventKind kind,
			 const char *role, bool reminder, const char *path)
{
	LcGraph    *g = b->g;
	int			id = graph_event_id(g, name);

	if (id >= 0 && id < LC_NUM_RESERVED_EVENTS)
		wf_error(path, "\"%s\" is a reserved event", name);
	if (id >= 0)
	{
		if (g->events[id].kind != kind || strcmp(g->events[id].role, role) != 0 ||
			b->event_reminder[id] != reminder)
			wf_error(path, "event \"%s\" is already used as another kind of event at %s",
					 name, b->event_paths[id]);
		return id;
	}
	if (g->n_events == b->n_events_max)
	{
		b->n_events_max *= 2;
		g->events = repalloc(g->events, sizeof(LcGraphEvent) * b->n_events_max);
		b->event_paths = repalloc(b->event_paths, sizeof(char *) * b->n_events_max);
		b->event_reminder = repalloc(b->event_reminder, sizeof(bool) * b->n_events_max);
	}
	b->event_reminder[g->n_events] = reminder;
	g->events[g->n_events].name = pstrdup(name);
	g->events[g->n_events].kind = kind;
	g->events[g->n_events].role = role;
	b->event_paths[g->n_events] = pstrdup(path);
	return g->n_events++;
}

static LcGraphEdge *
wf_edge_new(WfBuild *b)
{
	LcGraph    *g = b->g;
	LcGraphEdge *e;

	if (g->n_edges == b->n_edges_max)
	{
		b->n_edges_max *= 2;
		g->edges = repalloc(g->edges, sizeof(LcGraphEdge) * b->n_edges_max);
	}
	e = &g->edges[g->n_edges++];
	memset(e, 0, sizeof(*e));
	e->event = LC_EV_NONE;
	e->to = LC_STATE_SAME;
	e->message = -1;
	e->hook = -1;
	return e;
}

/*
 * "params": name -> interval string, or name -> array of interval strings
 * (a list of reminder offsets).
 */
static void
wf_parse_params(WfBuild *b, const JsonbValue *v)
{
	LcGraph    *g = b->g;
	int			n;
	WfPair	   *p = wf_pairs(v, "params", &n);

	g->params = palloc0(sizeof(LcGraphParam) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		LcGraphParam *pa = &g->params[g->n_params];
		char	   *path = psprintf("params.%s", p[i].key);

		wf_check_name(p[i].key, path, "a parameter name");
		for (int k = 0; k < lengthof(wf_policy_keys); k++)
			if (strcmp(p[i].key, wf_policy_keys[k]) == 0)
				wf_error(path, "\"%s\" is a policy key, not a parameter name",
						 p[i].key);
		pa->name = pstrdup(p[i].key);
		if (p[i].val.type == jbvString)
		{
			pa->kind = LC_PARAM_INTERVAL;
			wf_parse_interval(wf_string(&p[i].val, path, ""), path, &pa->value);
		}
		else if (wf_is_array(&p[i].val))
		{
			int			m;
			WfPair	   *el = wf_elems(&p[i].val, path, &m);

			if (m > WF_MAX_REMINDERS)
				wf_error(path, "at most %d reminders are allowed",
						 WF_MAX_REMINDERS);
			pa->kind = LC_PARAM_LIST;
			pa->list = palloc0(sizeof(Interval) * Max(m, 1));
			for (int j = 0; j < m; j++)
			{
				char	   *epath = psprintf("%s[%d]", path, j);

				wf_parse_interval(wf_string(&el[j].val, epath,
											"an interval string such as \"7 days\""),
								  epath, &pa->list[j]);
				for (int k = 0; k < j; k++)
					if (wf_interval_cmp(&pa->list[k], &pa->list[j]) == 0)
						wf_error(epath, "reminders must be distinct");
			}
			pa->n_list = m;
		}
		else
			wf_error(path, "expected an interval string such as \"30 days\" or an array of them");
		g->n_params++;
	}
}

/*
 * "messages": name -> {"subject": text, "text": text} (both or neither),
 * templates whose placeholders render.c knows (render_check_template()).
 */
static void
wf_parse_messages(WfBuild *b, const JsonbValue *v)
{
	LcGraph    *g = b->g;
	int			n;
	WfPair	   *p = wf_pairs(v, "messages", &n);

	g->messages = palloc0(sizeof(LcGraphMessage) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		LcGraphMessage *m = &g->messages[g->n_messages];
		char	   *path = psprintf("messages.%s", p[i].key);
		int			nk;
		WfPair	   *k;

		wf_check_name(p[i].key, path, "a message name");
		m->name = pstrdup(p[i].key);
		k = wf_pairs(&p[i].val, path, &nk);
		for (int j = 0; j < nk; j++)
		{
			char	   *kpath = psprintf("%s.%s", path, k[j].key);

			const char *problem = NULL;

			if (strcmp(k[j].key, "subject") == 0)
			{
				m->subject = wf_string(&k[j].val, kpath, "a string");
				problem = render_check_template(m->subject, true);
			}
			else if (strcmp(k[j].key, "text") == 0)
			{
				m->text = wf_string(&k[j].val, kpath, "a string");
				problem = render_check_template(m->text, false);
			}
			else
				wf_error(kpath, "unknown key (expected \"subject\" or \"text\")");
			if (problem != NULL)
				wf_error(kpath, "%s", problem);
		}
		if ((m->subject == NULL) != (m->text == NULL))
			wf_error(path, "a template needs both \"subject\" and \"text\"");
		g->n_messages++;
	}
}

/*
 * The states' names: none first, the definition's, erased last.
 */
static void
wf_parse_state_names(WfBuild *b, WfPair *states, int n)
{
	LcGraph    *g = b->g;

	if (n == 0)
		wf_error("states", "a workflow needs at least one state");
	if (n > LC_MAX_STATES - 2)
		wf_error("states", "at most %d states are allowed", LC_MAX_STATES - 2);
	g->n_states = n + 2;
	g->states = palloc0(sizeof(LcGraphState) * g->n_states);
	b->state_paths = palloc0(sizeof(char *) * g->n_states);
	b->reminder_paths = palloc0(sizeof(char *) * g->n_states);
	b->after_paths = palloc0(sizeof(char *) * g->n_states);
	g->states[LC_STATE_NONE].name = "none";
	b->state_paths[LC_STATE_NONE] = "states";
	for (int i = 0; i < n; i++)
	{
		char	   *path = psprintf("states.%s", states[i].key);

		wf_check_name(states[i].key, path, "a state name");
		if (strcmp(states[i].key, "none") == 0 ||
			strcmp(states[i].key, "erased") == 0)
			wf_error(path, "\"%s\" is a reserved state every workflow has",
					 states[i].key);
		g->states[i + 1].name = pstrdup(states[i].key);
		b->state_paths[i + 1] = path;
	}
	g->erased = n + 1;
	g->states[g->erased].name = "erased";
	b->state_paths[g->erased] = "states";
}

/*
 * A state a definition names: one of its own or erased (for a "to"), or
 * none (for a "from").
 */
static int
wf_state_ref(const LcGraph *g, const JsonbValue *v, const char *path,
			 bool allow_none, bool allow_erased)
{
	char	   *name = wf_string(v, path, "a state name");
	int			id = graph_state_id(g, name);

	if (id < 0 || (id == LC_STATE_NONE && !allow_none) ||
		(id == g->erased && !allow_erased))
		wf_error(path, "unknown state \"%s\"", name);
	return id;
}

static int
wf_message_ref(const LcGraph *g, const JsonbValue *v, const char *path)
{
	char	   *name = wf_string(v, path, "a message name");
	int			id = graph_message_id(g, name);

	if (id < 0)
		wf_error(path, "unknown message \"%s\" (declare it under \"messages\")",
				 name);
	return id;
}

static int
wf_hook_ref(WfBuild *b, const JsonbValue *v, const char *path)
{
	char	   *name = wf_string(v, path, "a hook name");

	wf_check_name(name, path, "a hook name");
	return wf_hook_id(b, name);
}

/*
 * "after": an interval literal, a parameter, or a list of them, summed.
 */
static void
wf_parse_duration(WfBuild *b, const JsonbValue *v, const char *path,
				  LcDuration *d)
{
	WfPair	   *terms;
	WfPair		one;
	int			n;

	if (v->type == jbvString)
	{
		one.key = NULL;
		one.val = *v;
		terms = &one;
		n = 1;
	}
	else if (wf_is_array(v))
	{
		terms = wf_elems(v, path, &n);
		if (n == 0 || n > LC_MAX_TERMS)
			wf_error(path, "a sum needs 1 to %d terms", LC_MAX_TERMS);
	}
	else
		wf_error(path, "expected an interval, a parameter name, or an array of them");

	d->n_terms = n;
	for (int i = 0; i < n; i++)
	{
		char	   *tpath = v->type == jbvString ? (char *) path :
			psprintf("%s[%d]", path, i);
		char	   *s = wf_string(&terms[i].val, tpath,
								  "an interval or a parameter name");
		int			p = wf_param_id(b->g, s);

		d->terms[i].param = p;
		memset(&d->terms[i].literal, 0, sizeof(Interval));
		if (p >= 0)
		{
			if (b->g->params[p].kind != LC_PARAM_INTERVAL)
				wf_error(tpath, "parameter \"%s\" is a list, not an interval", s);
		}
		else if (wf_try_interval(s) == NULL)
			wf_error(tpath, "unknown parameter \"%s\"", s);
		else
			wf_parse_interval(s, tpath, &d->terms[i].literal);
	}
}

/*
 * "reminders": {"before" | "after": list or list parameter, "event",
 * "message"}.
 */
static void
wf_parse_reminders(WfBuild *b, int state, const JsonbValue *v,
				   const char *path, LcReminderSpec *rs)
{
	LcGraph    *g = b->g;
	int			n;
	WfPair	   *p = wf_pairs(v, path, &n);
	const JsonbValue *offsets = NULL;
	const char *opath = NULL;
	char	   *event = NULL;
	const char *epath = NULL;

	rs->param = -1;
	rs->message = -1;
	rs->event = LC_EV_NONE;
	for (int i = 0; i < n; i++)
	{
		char	   *kpath = psprintf("%s.%s", path, p[i].key);

		if (strcmp(p[i].key, "before") == 0 || strcmp(p[i].key, "after") == 0)
		{
			if (offsets != NULL)
				wf_error(kpath, "give either \"before\" or \"after\", not both");
			offsets = &p[i].val;
			opath = kpath;
			rs->before = p[i].key[0] == 'b';
		}
		else if (strcmp(p[i].key, "event") == 0)
		{
			event = wf_string(&p[i].val, kpath, "an event name");
			wf_check_name(event, kpath, "an event name");
			epath = kpath;
		}
		else if (strcmp(p[i].key, "message") == 0)
			rs->message = wf_message_ref(g, &p[i].val, kpath);
		else
			wf_error(kpath, "unknown key (expected \"before\", \"after\", \"event\" or \"message\")");
	}
	if (offsets == NULL)
		wf_error(path, "missing \"before\" or \"after\"");
	if (event == NULL)
		wf_error(path, "missing \"event\"");
	b->reminder_paths[state] = opath;

	if (offsets->type == jbvString)
	{
		char	   *s = wf_string(offsets, opath, "");

		rs->param = wf_param_id(g, s);
		if (rs->param < 0)
			wf_error(opath, "unknown parameter \"%s\"", s);
		if (g->params[rs->param].kind != LC_PARAM_LIST)
			wf_error(opath, "parameter \"%s\" is an interval, not a list", s);
		if (rs->before)
			b->list_before[rs->param] = true;
		else
			b->list_after[rs->param] = true;
		if (b->list_before[rs->param] && b->list_after[rs->param])
			wf_error(opath, "parameter \"%s\" is used both before and after a timer", s);
	}
	else if (wf_is_array(offsets))
	{
		int			m;
		WfPair	   *el = wf_elems(offsets, opath, &m);

		if (m > WF_MAX_REMINDERS)
			wf_error(opath, "at most %d reminders are allowed", WF_MAX_REMINDERS);
		rs->literals = palloc0(sizeof(Interval) * Max(m, 1));
		for (int j = 0; j < m; j++)
		{
			char	   *jpath = psprintf("%s[%d]", opath, j);

			wf_parse_interval(wf_string(&el[j].val, jpath,
										"an interval string such as \"7 days\""),
							  jpath, &rs->literals[j]);
			for (int k = 0; k < j; k++)
				if (wf_interval_cmp(&rs->literals[k], &rs->literals[j]) == 0)
					wf_error(jpath, "reminders must be distinct");
		}
		rs->n_literals = m;
		wf_sort_list(rs->literals, m, rs->before);
	}
	else
		wf_error(opath, "expected a list parameter or an array of intervals");

	rs->event = wf_event_add(b, event, LC_KIND_TIMER, "worker", true, epath);
}

/*
 * A state's object: {"hint": text, "timer": {...}}.
 */
static void
wf_parse_state(WfBuild *b, int state, const JsonbValue *v)
{
	LcGraph    *g = b->g;
	const char *path = b->state_paths[state];
	int			n;
	WfPair	   *p = wf_pairs(v, path, &n);
	bool		timer = false;

	for (int i = 0; i < n; i++)
	{
		char	   *kpath = psprintf("%s.%s", path, p[i].key);

		if (strcmp(p[i].key, "hint") == 0)
			g->states[state].hint = wf_string(&p[i].val, kpath, "a string");
		else if (strcmp(p[i].key, "timer") == 0)
		{
			wf_parse_timer(b, state, &p[i].val, kpath);
			timer = true;
		}
		else
			wf_error(kpath, "unknown key (expected \"hint\" or \"timer\")");
	}
	if (!timer)
		wf_error(path, "every state but erased needs a \"timer\"");
}

/*
 * A state's timer: {"event", "after", "from", "to", "message", "hook",
 * "deadline", "reminders"}.
 */
static void
wf_parse_timer(WfBuild *b, int state, const JsonbValue *v, const char *path)
{
	LcGraph    *g = b->g;
	LcGraphTimer *t = &g->states[state].timer;
	int			n;
	WfPair	   *p = wf_pairs(v, path, &n);
	char	   *event = NULL;
	const char *epath = NULL;
	const JsonbValue *reminders = NULL;
	const char *rpath = NULL;
	bool		has_after = false,
				has_to = false;

	t->present = true;
	t->anchor = LC_ANCHOR_ENTERED;
	t->message = -1;
	t->hook = -1;
	for (int i = 0; i < n; i++)
	{
		char	   *kpath = psprintf("%s.%s", path, p[i].key);
		const char *k = p[i].key;

		if (strcmp(k, "event") == 0)
		{
			event = wf_string(&p[i].val, kpath, "an event name");
			wf_check_name(event, kpath, "an event name");
			epath = kpath;
		}
		else if (strcmp(k, "after") == 0)
		{
			wf_parse_duration(b, &p[i].val, kpath, &t->after);
			b->after_paths[state] = kpath;
			has_after = true;
		}
		else if (strcmp(k, "from") == 0)
		{
			char	   *a = wf_string(&p[i].val, kpath, "an anchor name");
			int			j;

			for (j = 0; j < LC_NUM_ANCHORS; j++)
				if (strcmp(a, wf_anchor_names[j]) == 0)
					break;
			if (j == LC_NUM_ANCHORS)
				wf_error(kpath, "unknown anchor \"%s\" (expected entered, due, last_seen or started)", a);
			t->anchor = (LcAnchor) j;
		}
		else if (strcmp(k, "to") == 0)
		{
			t->to = wf_state_ref(g, &p[i].val, kpath, false, true);
			has_to = true;
		}
		else if (strcmp(k, "message") == 0)
			t->message = wf_message_ref(g, &p[i].val, kpath);
		else if (strcmp(k, "hook") == 0)
			t->hook = wf_hook_ref(b, &p[i].val, kpath);
		else if (strcmp(k, "deadline") == 0)
		{
			char	   *d = wf_string(&p[i].val, kpath, "a deadline name");

			wf_check_name(d, kpath, "a deadline name");
			t->deadline = d;
		}
		else if (strcmp(k, "reminders") == 0)
		{
			reminders = &p[i].val;
			rpath = kpath;
		}
		else
			wf_error(kpath, "unknown key (expected event, after, from, to, message, hook, deadline or reminders)");
	}
	if (event == NULL)
		wf_error(path, "missing \"event\"");
	if (!has_after)
		wf_error(path, "missing \"after\"");
	if (!has_to)
		wf_error(path, "missing \"to\"");
	t->event = wf_event_add(b, event, LC_KIND_TIMER, "worker", false, epath);
	if (t->deadline == NULL)
		t->deadline = g->events[t->event].name;
	if (reminders != NULL)
	{
		t->has_reminders = true;
		wf_parse_reminders(b, state, reminders, rpath, &t->reminders);
		if (t->reminders.event == t->event)
			wf_error(rpath, "a reminder's event must differ from its timer's");
	}
}

/*
 * "events": name -> array of edges, each {"from": [states], "to": state |
 * "effect": touch|noop|refuse, "message", "hook", "role", "hint"}.
 */
static void
wf_parse_events(WfBuild *b, WfPair *events, int n)
{
	LcGraph    *g = b->g;
	int			start = LC_EV_NONE;
	const char *start_path = NULL;

	for (int i = 0; i < n; i++)
	{
		char	   *path = psprintf("events.%s", events[i].key);
		int			ne;
		WfPair	   *edges;
		const char *role = "app";
		int			ev;
		LcStateSet	seen = {0, 0};

		wf_check_name(events[i].key, path, "an event name");
		for (int r = 0; r < LC_NUM_RESERVED_EVENTS; r++)
			if (strcmp(events[i].key, wf_reserved_events[r]) == 0)
				wf_error(path, "\"%s\" is a reserved event every workflow has",
						 events[i].key);
		edges = wf_elems(&events[i].val, path, &ne);
		if (ne == 0)
			wf_error(path, "an event needs at least one edge");

		/* the role first: an event has one, given on any of its edges */
		{
			const char *given = NULL;

			for (int j = 0; j < ne; j++)
			{
				int			nk;
				WfPair	   *k;
				char	   *epath = psprintf("%s[%d]", path, j);

				k = wf_pairs(&edges[j].val, epath, &nk);
				for (int x = 0; x < nk; x++)
				{
					char	   *kpath;
					char	   *r;

					if (strcmp(k[x].key, "role") != 0)
						continue;
					kpath = psprintf("%s.role", epath);
					r = wf_string(&k[x].val, kpath, "\"app\" or \"admin\"");
					if (strcmp(r, "app") != 0 && strcmp(r, "admin") != 0)
						wf_error(kpath, "unknown role \"%s\" (expected app or admin)", r);
					if (given != NULL && strcmp(r, given) != 0)
						wf_error(kpath, "every edge of an event has the same role");
					given = strcmp(r, "app") == 0 ? "app" : "admin";
				}
			}
			if (given != NULL)
				role = given;
		}
		ev = wf_event_add(b, events[i].key, LC_KIND_CALL, role, false, path);

		for (int j = 0; j < ne; j++)
		{
			char	   *epath = psprintf("%s[%d]", path, j);
			int			nk;
			WfPair	   *k = wf_pairs(&edges[j].val, epath, &nk);
			LcGraphEdge *e = wf_edge_new(b);
			bool		has_from = false,
						has_to = false,
						has_effect = false;
			const char *hint_path = NULL;
			const char *mh_path = NULL;

			e->event = ev;
			e->hold = LC_HOLD_ANY;
			e->effect = LC_FX_MOVE;
			for (int x = 0; x < nk; x++)
			{
				char	   *kpath = psprintf("%s.%s", epath, k[x].key);
				const char *key = k[x].key;

				if (strcmp(key, "from") == 0)
				{
					int			nf;
					WfPair	   *f = wf_elems(&k[x].val, kpath, &nf);

					if (nf == 0)
						wf_error(kpath, "an edge needs at least one state");
					for (int y = 0; y < nf; y++)
					{
						char	   *fpath = psprintf("%s[%d]", kpath, y);
						int			s = wf_state_ref(g, &f[y].val, fpath, true, false);

						if (lc_set_has(seen, s))
							wf_error(fpath, "event \"%s\" already has an edge from state \"%s\"",
									 events[i].key, g->states[s].name);
						lc_set_add(seen, s);
						lc_set_add(e->from, s);
					}
					has_from = true;
				}
				else if (strcmp(key, "to") == 0)
				{
					e->to = wf_state_ref(g, &k[x].val, kpath, false, true);
					has_to = true;
				}
				else if (strcmp(key, "effect") == 0)
				{
					char	   *fx = wf_string(&k[x].val, kpath, "an effect name");

					if (strcmp(fx, "touch") == 0)
						e->effect = LC_FX_TOUCH;
					else if (strcmp(fx, "noop") == 0)
						e->effect = LC_FX_NOOP;
					else if (strcmp(fx, "refuse") == 0)
						e->effect = LC_FX_REFUSE;
					else
						wf_error(kpath, "unknown effect \"%s\" (expected touch, noop or refuse)", fx);
					has_effect = true;
				}
				else if (strcmp(key, "message") == 0)
				{
					e->message = wf_message_ref(g, &k[x].val, kpath);
					mh_path = kpath;
				}
				else if (strcmp(key, "hook") == 0)
				{
					e->hook = wf_hook_ref(b, &k[x].val, kpath);
					mh_path = kpath;
				}
				else if (strcmp(key, "hint") == 0)
				{
					e->hint = wf_string(&k[x].val, kpath, "a string");
					hint_path = kpath;
				}
				else if (strcmp(key, "role") == 0)
					 /* done above */ ;
				else
					wf_error(kpath, "unknown key (expected from, to, effect, message, hook, role or hint)");
			}
			if (!has_from)
				wf_error(epath, "missing \"from\"");
			if (has_to && has_effect)
				wf_error(epath, "an edge has either \"to\" or \"effect\", not both");
			if (!has_to && !has_effect)
				wf_error(epath, "an edge needs \"to\" (a move) or \"effect\"");
			if (e->effect == LC_FX_REFUSE && e->hint == NULL)
				wf_error(epath, "a \"refuse\" edge needs a \"hint\"");
			if (e->effect != LC_FX_REFUSE && hint_path != NULL)
				wf_error(hint_path, "only a \"refuse\" edge has a \"hint\"");
			if (has_effect && mh_path != NULL)
				wf_error(mh_path, "only an edge with \"to\" sends a message or runs a hook");
			if (e->to == g->erased)
				e->erase = true;
			if (lc_set_has(e->from, LC_STATE_NONE))
			{
				if (e->effect != LC_FX_MOVE)
					wf_error(epath, "the start edge (from \"none\") needs a \"to\"");
				if (start != LC_EV_NONE && start != ev)
					wf_error(psprintf("%s.from", epath),
							 "only one event may start the workflow (\"none\" is already in %s)",
							 start_path);
				start = ev;
				start_path = psprintf("%s.from", epath);
			}
		}
	}
	if (start == LC_EV_NONE)
		wf_error("events", "no start event (an event whose \"from\" holds \"none\")");
	g->start_event = start;
}

/*
 * One edge per state's timer and reminder, then the reserved edges of
 * every live state (0.2.0's hold, release, hold_lapse and erase).
 */
static void
wf_generate_edges(WfBuild *b)
{
	LcGraph    *g = b->g;
	int			erase_hook = wf_hook_id(b, WF_ERASE_HOOK);
	LcStateSet	live = {0, 0};

	for (int s = 1; s < g->erased; s++)
	{
		LcGraphTimer *t = &g->states[s].timer;
		LcGraphEdge *e;

		lc_set_add(live, s);
		if (t->has_reminders)
		{
			e = wf_edge_new(b);
			lc_set_add(e->from, s);
			e->event = t->reminders.event;
			e->effect = LC_FX_REMINDER;
			e->hold = LC_HOLD_STOPS;
			e->message = t->reminders.message;
		}
		e = wf_edge_new(b);
		lc_set_add(e->from, s);
		e->event = t->event;
		e->to = t->to;
		e->effect = LC_FX_MOVE;
		e->hold = LC_HOLD_STOPS;
		e->message = t->message;
		e->hook = t->hook;
		e->erase = t->to == g->erased;
	}

	{
		LcGraphEdge *e = wf_edge_new(b);

		memcpy(e->from, live, sizeof(LcStateSet));
		e->event = LC_EV_HOLD;
		e->effect = LC_FX_HOLD;
		e->hold = LC_HOLD_ANY;
		e = wf_edge_new(b);
		memcpy(e->from, live, sizeof(LcStateSet));
		e->event = LC_EV_RELEASE;
		e->effect = LC_FX_RELEASE;
		e->hold = LC_HOLD_NEEDS;
		e = wf_edge_new(b);
		memcpy(e->from, live, sizeof(LcStateSet));
		e->event = LC_EV_HOLD_LAPSE;
		e->effect = LC_FX_RELEASE;
		e->hold = LC_HOLD_NEEDS;
		e = wf_edge_new(b);
		memcpy(e->from, live, sizeof(LcStateSet));
		e->event = LC_EV_ERASE;
		e->to = g->erased;
		e->effect = LC_FX_MOVE;
		e->hold = LC_HOLD_STOPS;
		e->hook = erase_hook;
		e->erase = true;
	}
}

/*
 * The proofs: reachability from the start event, termination by timers
 * alone, reminder windows at the defaults (references were resolved
 * while parsing).
 */
static void
wf_prove(WfBuild *b)
{
	LcGraph    *g = b->g;
	bool		reached[LC_MAX_STATES] = {0};
	int			queue[LC_MAX_STATES];
	int			head = 0,
				tail = 0;
	LcParamValues pv;

	/* 1. every state is reachable from the start event */
	reached[LC_STATE_NONE] = true;
	queue[tail++] = LC_STATE_NONE;
	while (head < tail)
	{
		int			s = queue[head++];

		for (int i = 0; i < g->n_edges; i++)
		{
			const LcGraphEdge *e = &g->edges[i];

			if (e->to < 0 || !lc_set_has(e->from, s) || reached[e->to])
				continue;
			if (s == LC_STATE_NONE && e->event != g->start_event)
				continue;
			reached[e->to] = true;
			queue[tail++] = e->to;
		}
	}
	for (int s = 1; s < g->erased; s++)
		if (!reached[s])
			wf_error(b->state_paths[s],
					 "state \"%s\" cannot be reached from the start event \"%s\"",
					 g->states[s].name, g->events[g->start_event].name);

	/* 2. every state reaches erased by timers alone */
	for (int s = 1; s < g->erased; s++)
	{
		bool		visited[LC_MAX_STATES] = {0};
		StringInfoData chain;
		int			x = s;

		initStringInfo(&chain);
		appendStringInfoString(&chain, g->states[s].name);
		while (x != g->erased)
		{
			visited[x] = true;
			x = g->states[x].timer.to;
			appendStringInfo(&chain, " -> %s", g->states[x].name);
			if (x != g->erased && visited[x])
				wf_error(psprintf("%s.timer.to", b->state_paths[s]),
						 "state \"%s\" cannot reach \"erased\" by timers alone (%s)",
						 g->states[s].name, chain.data);
		}
		pfree(chain.data);
	}

	/* 3. reminders inside their windows, at the defaults */
	workflow_defaults(g, &pv);
	for (int s = 1; s < g->erased; s++)
		wf_check_reminders(g, &pv, s, b->reminder_paths, b->after_paths);
}

/*
 * Sort reminder offsets in firing order: after the anchor ascending,
 * before the timer descending.
 */
static void
wf_sort_list(Interval *list, int n, bool before)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--)
		{
			int			c = wf_interval_cmp(&list[j - 1], &list[j]);
			Interval	tmp;

			if (before ? c >= 0 : c <= 0)
				break;
			tmp = list[j];
			list[j] = list[j - 1];
			list[j - 1] = tmp;
		}
}

/*
 * Raise 22023 the way a policy's key is refused (policy.c), for a value
 * a policy gave.
 */
static void
wf_policy_invalid(const char *key, const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid policy key \"%s\": %s", key, msg),
			 errhint("See the \"Policies\" section of the lifecycle README.")));
}

/*
 * No reminder of a state's timer may fall at or after the timer or at or
 * before its anchor, nor change places with another, for any start date:
 * every day of six years from 2095 (two leap years and the non-leap 2100)
 * is tried with the timers' own arithmetic, so "1 mon" is 28 days in
 * February.  With paths (at definition) the refusal names the JSON path;
 * without (a policy's values) it names the policy key, as 0.2.0 did.
 */
static void
wf_check_reminders(const LcGraph *g, const LcParamValues *pv, int state,
				   const char *const *paths, const char *const *after_paths)
{
	const LcGraphTimer *t = &g->states[state].timer;
	const LcReminderSpec *rs = &t->reminders;
	const Interval *list;
	int			n;
	const char *key;
	const char *window;

	if (!t->present)
		return;
	if (rs->param >= 0 && t->has_reminders)
	{
		list = pv->v[rs->param].list;
		n = pv->v[rs->param].n_list;
		key = g->params[rs->param].name;
	}
	else
	{
		list = rs->literals;
		n = t->has_reminders ? rs->n_literals : 0;
		key = psprintf("states.%s.timer.reminders", g->states[state].name);
	}
	if (t->after.n_terms == 1 && t->after.terms[0].param >= 0)
		window = g->params[t->after.terms[0].param].name;
	else
		window = psprintf("states.%s.timer.after", g->states[state].name);

	for (int d = 0; d < 6 * 366; d++)
	{
		TimestampTz s = WF_DAY_2095 + (TimestampTz) d * USECS_PER_DAY;
		TimestampTz deadline = workflow_add(pv, &t->after, s);
		TimestampTz prev = s;

		if (deadline <= s)
		{
			if (paths)
				wf_error(after_paths[state], "interval must be positive");
			wf_policy_invalid(window, "interval must be positive");
		}
		for (int i = 0; i < n; i++)
		{
			TimestampTz at = rs->before ? machine_sub(deadline, &list[i]) :
				machine_add(s, &list[i]);

			if (at >= deadline || at <= s)
			{
				if (paths)
					wf_error(paths[state],
							 "each reminder of state \"%s\" must fall inside its timer's \"after\" for every start date (calendar months count: \"1 mon\" is 28 days in February)",
							 g->states[state].name);
				wf_policy_invalid(key,
								  psprintf("each reminder must fall inside %s for every start date (calendar months count: \"1 mon\" is 28 days in February)",
										   window));
			}
			if (at < prev)
			{
				if (paths)
					wf_error(paths[state],
							 "the reminders of state \"%s\" must fall in the same order for every start date (calendar months count: \"1 mon\" is 28 days in February)",
							 g->states[state].name);
				wf_policy_invalid(key,
								  "reminders must fall in the same order for every start date (calendar months count: \"1 mon\" is 28 days in February)");
			}
			prev = at;
		}
	}
}

static const char *
wf_strdup(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

/*
 * A copy of a compiled graph in the current context, without what
 * compiling it needed (paths, parsed JSON): what a cache keeps.
 */
static LcGraph *
wf_copy_graph(const LcGraph *src)
{
	LcGraph    *g = palloc(sizeof(LcGraph));

	*g = *src;
	g->cxt = CurrentMemoryContext;
	g->name = pstrdup(src->name);
	g->states = palloc(sizeof(LcGraphState) * src->n_states);
	for (int i = 0; i < src->n_states; i++)
	{
		LcGraphState *st = &g->states[i];
		LcReminderSpec *rs = &st->timer.reminders;

		*st = src->states[i];
		st->name = pstrdup(src->states[i].name);
		st->hint = wf_strdup(src->states[i].hint);
		st->timer.deadline = wf_strdup(src->states[i].timer.deadline);
		if (rs->n_literals > 0)
		{
			rs->literals = palloc(sizeof(Interval) * rs->n_literals);
			memcpy(rs->literals, src->states[i].timer.reminders.literals,
				   sizeof(Interval) * rs->n_literals);
		}
		else
			rs->literals = NULL;
	}
	g->events = palloc(sizeof(LcGraphEvent) * src->n_events);
	for (int i = 0; i < src->n_events; i++)
	{
		g->events[i] = src->events[i];
		g->events[i].name = pstrdup(src->events[i].name);
	}
	g->edges = palloc(sizeof(LcGraphEdge) * Max(src->n_edges, 1));
	for (int i = 0; i < src->n_edges; i++)
	{
		g->edges[i] = src->edges[i];
		g->edges[i].hint = wf_strdup(src->edges[i].hint);
	}
	g->messages = palloc(sizeof(LcGraphMessage) * Max(src->n_messages, 1));
	for (int i = 0; i < src->n_messages; i++)
	{
		g->messages[i].name = pstrdup(src->messages[i].name);
		g->messages[i].subject = wf_strdup(src->messages[i].subject);
		g->messages[i].text = wf_strdup(src->messages[i].text);
	}
	g->hooks = palloc(sizeof(char *) * Max(src->n_hooks, 1));
	for (int i = 0; i < src->n_hooks; i++)
		g->hooks[i] = pstrdup(src->hooks[i]);
	g->params = palloc(sizeof(LcGraphParam) * Max(src->n_params, 1));
	for (int i = 0; i < src->n_params; i++)
	{
		g->params[i] = src->params[i];
		g->params[i].name = pstrdup(src->params[i].name);
		if (src->params[i].n_list > 0)
		{
			g->params[i].list = palloc(sizeof(Interval) * src->params[i].n_list);
			memcpy(g->params[i].list, src->params[i].list,
				   sizeof(Interval) * src->params[i].n_list);
		}
		else
			g->params[i].list = NULL;
	}
	g->definition = palloc(VARSIZE(src->definition));
	memcpy(g->definition, src->definition, VARSIZE(src->definition));
	return g;
}

/*
 * Parse, validate, prove and compile a definition.
 */
LcGraph *
workflow_compile(const char *name, int version, Jsonb *def,
				 MemoryContext parent)
{
	MemoryContext build;
	MemoryContext cxt;
	MemoryContext oldcxt;
	WfBuild		b;
	LcGraph    *result;
	LcGraph    *g;
	JsonbValue	root;
	WfPair	   *top;
	int			n_top;
	WfPair	   *states = NULL;
	WfPair	   *events = NULL;
	int			n_states = 0,
				n_events = 0;
	bool		seen_states = false,
				seen_events = false;
	JsonbValue	empty_params;

	/*
	 * Compiled in a context under the caller's, so that a refusal frees it
	 * with the rest; the graph is then copied into a context of its own
	 * under "parent", without the compiler's leftovers.
	 */
	build = AllocSetContextCreate(CurrentMemoryContext, "lifecycle workflow compile",
								  ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(build);

	memset(&b, 0, sizeof(b));
	g = palloc0(sizeof(LcGraph));
	b.g = g;
	g->cxt = build;
	g->name = pstrdup(name);
	g->version = version;
	g->start_event = LC_EV_NONE;

	b.n_events_max = LC_NUM_RESERVED_EVENTS + 16;
	g->events = palloc0(sizeof(LcGraphEvent) * b.n_events_max);
	b.event_paths = palloc0(sizeof(char *) * b.n_events_max);
	b.event_reminder = palloc0(sizeof(bool) * b.n_events_max);
	for (int i = 0; i < LC_NUM_RESERVED_EVENTS; i++)
	{
		g->events[i].name = wf_reserved_events[i];
		g->events[i].kind = wf_reserved_kinds[i];
		g->events[i].role = wf_reserved_roles[i];
		b.event_paths[i] = "(reserved)";
	}
	g->n_events = LC_NUM_RESERVED_EVENTS;
	b.n_edges_max = 32;
	g->edges = palloc0(sizeof(LcGraphEdge) * b.n_edges_max);
	b.n_hooks_max = 4;
	g->hooks = palloc0(sizeof(char *) * b.n_hooks_max);

	if (def == NULL || JB_ROOT_IS_SCALAR(def) || !JB_ROOT_IS_OBJECT(def))
		wf_error("(root)", "a definition is a JSON object");
	root.type = jbvBinary;
	root.val.binary.data = &def->root;
	root.val.binary.len = VARSIZE(def) - VARHDRSZ;

	/* the top level; params and messages first, states and events name them */
	top = wf_pairs(&root, "(root)", &n_top);
	memset(&empty_params, 0, sizeof(empty_params));
	for (int i = 0; i < n_top; i++)
	{
		const char *k = top[i].key;

		if (strcmp(k, "description") == 0)
			(void) wf_string(&top[i].val, "description", "a string");
		else if (strcmp(k, "params") == 0)
			wf_parse_params(&b, &top[i].val);
		else if (strcmp(k, "messages") == 0)
			wf_parse_messages(&b, &top[i].val);
		else if (strcmp(k, "states") == 0)
		{
			states = wf_pairs(&top[i].val, "states", &n_states);
			seen_states = true;
		}
		else if (strcmp(k, "events") == 0)
		{
			events = wf_pairs(&top[i].val, "events", &n_events);
			seen_events = true;
		}
		else
			wf_error(k, "unknown key (expected description, params, messages, states or events)");
	}
	if (!seen_states)
		wf_error("states", "missing");
	if (!seen_events)
		wf_error("events", "missing");
	if (g->params == NULL)
		g->params = palloc0(sizeof(LcGraphParam));
	if (g->messages == NULL)
		g->messages = palloc0(sizeof(LcGraphMessage));
	b.list_before = palloc0(sizeof(bool) * Max(g->n_params, 1));
	b.list_after = palloc0(sizeof(bool) * Max(g->n_params, 1));

	wf_parse_state_names(&b, states, n_states);
	/* the calls first: their ids follow the reserved events */
	wf_parse_events(&b, events, n_events);
	for (int i = 0; i < n_states; i++)
		wf_parse_state(&b, i + 1, &states[i].val);
	wf_generate_edges(&b);
	wf_prove(&b);

	g->definition = wf_normalize(def);

	cxt = AllocSetContextCreate(parent, "lifecycle workflow",
								ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(cxt);
	result = wf_copy_graph(g);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(build);
	return result;
}

/*
 * The definition's defaults as parameter values, lists in firing order;
 * allocated in the current context.
 */
void
workflow_defaults(const LcGraph *g, LcParamValues *out)
{
	out->n = g->n_params;
	out->v = palloc0(sizeof(LcParamValue) * Max(g->n_params, 1));
	for (int i = 0; i < g->n_params; i++)
	{
		out->v[i].value = g->params[i].value;
		out->v[i].n_list = g->params[i].n_list;
		if (g->params[i].n_list > 0)
		{
			out->v[i].list = palloc(sizeof(Interval) * g->params[i].n_list);
			memcpy(out->v[i].list, g->params[i].list,
				   sizeof(Interval) * g->params[i].n_list);
		}
	}
	workflow_sort_params(g, out);
}

/*
 * Put each list value in firing order for the timers that use it (after
 * the anchor ascending, before the timer descending).
 */
void
workflow_sort_params(const LcGraph *g, LcParamValues *pv)
{
	for (int s = 1; s < g->erased; s++)
	{
		const LcGraphTimer *t = &g->states[s].timer;

		if (t->present && t->has_reminders && t->reminders.param >= 0)
		{
			LcParamValue *v = &pv->v[t->reminders.param];

			wf_sort_list(v->list, v->n_list, t->reminders.before);
		}
	}
}

/*
 * A policy's values against the graph: every reminder inside its window
 * and in the same order for every start date (22023 naming the policy's
 * key, as 0.2.0).  The lists must be in firing order
 * (workflow_sort_params()).
 */
void
workflow_check_params(const LcGraph *g, const LcParamValues *pv)
{
	for (int s = 1; s < g->erased; s++)
		wf_check_reminders(g, pv, s, NULL, NULL);
}

/*
 * A policy's values of the workflow's parameters: the definition's
 * defaults, overridden by the keys of "values" that name a parameter
 * (a policy's other keys are left to policy.c; with strict, any other
 * key but a policy's own is refused), validated as 0.2.0 validated a
 * policy's intervals and reminders (22023 naming the key), put in firing
 * order and checked against the timers (workflow_check_params()).
 * Allocated in the current context.
 */
void
workflow_param_values(const LcGraph *g, Jsonb *values, bool strict,
					  LcParamValues *out)
{
	JsonbValue	root;
	WfPair	   *p;
	int			n;

	workflow_defaults(g, out);
	if (values != NULL)
	{
		if (JB_ROOT_IS_SCALAR(values) || !JB_ROOT_IS_OBJECT(values))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid policy: the definition must be a JSON object")));
		root.type = jbvBinary;
		root.val.binary.data = &values->root;
		root.val.binary.len = VARSIZE(values) - VARHDRSZ;
		p = wf_pairs(&root, "(root)", &n);
		for (int i = 0; i < n; i++)
		{
			int			id = wf_param_id(g, p[i].key);
			LcParamValue *v;

			if (id < 0)
			{
				bool		own = false;

				for (int k = 0; k < lengthof(wf_policy_keys); k++)
					if (strcmp(p[i].key, wf_policy_keys[k]) == 0)
						own = true;
				if (strict && !own)
					wf_policy_invalid(p[i].key, "unknown key");
				continue;
			}
			v = &out->v[id];
			if (g->params[id].kind == LC_PARAM_INTERVAL)
			{
				if (p[i].val.type != jbvString)
					wf_policy_invalid(p[i].key, "expected an interval string such as \"30 days\"");
				wf_policy_interval(p[i].key, pnstrdup(p[i].val.val.string.val,
													  p[i].val.val.string.len),
								   &v->value);
			}
			else
			{
				int			m;
				WfPair	   *el;

				if (!wf_is_array(&p[i].val))
					wf_policy_invalid(p[i].key, "expected an array of interval strings");
				el = wf_elems(&p[i].val, p[i].key, &m);
				if (m > WF_MAX_REMINDERS)
					wf_policy_invalid(p[i].key,
									  psprintf("at most %d reminders are allowed",
											   WF_MAX_REMINDERS));
				v->list = palloc0(sizeof(Interval) * Max(m, 1));
				for (int j = 0; j < m; j++)
				{
					if (el[j].val.type != jbvString)
						wf_policy_invalid(p[i].key, "expected an interval string such as \"30 days\"");
					wf_policy_interval(p[i].key,
									   pnstrdup(el[j].val.val.string.val,
												el[j].val.val.string.len),
									   &v->list[j]);
					for (int k = 0; k < j; k++)
						if (wf_interval_cmp(&v->list[k], &v->list[j]) == 0)
							wf_policy_invalid(p[i].key, "reminders must be distinct");
				}
				v->n_list = m;
			}
		}
	}
	workflow_sort_params(g, out);
	workflow_check_params(g, out);
}

/*
 * One interval a policy gives, with 0.2.0's refusals (policy.c).
 */
static void
wf_policy_interval(const char *key, const char *str, Interval *out)
{
	Interval   *iv = wf_try_interval(str);
	Interval	zero;
	Interval	limit;

	if (iv == NULL)
		wf_policy_invalid(key, psprintf("\"%s\" is not an interval", str));
	memset(&zero, 0, sizeof(zero));
	if (wf_interval_cmp(iv, &zero) <= 0 ||
		iv->month < 0 || iv->day < 0 || iv->time < 0)
		wf_policy_invalid(key, psprintf("interval \"%s\" must be positive", str));
	memset(&limit, 0, sizeof(limit));
	limit.month = 200 * MONTHS_PER_YEAR;
	if (wf_interval_cmp(iv, &limit) >= 0)
		wf_policy_invalid(key, psprintf("interval \"%s\" must be less than 200 years", str));
	*out = *iv;
}

/*
 * A duration at these values added to ts, term after term.
 */
TimestampTz
workflow_add(const LcParamValues *pv, const LcDuration *d, TimestampTz ts)
{
	for (int i = 0; i < d->n_terms; i++)
	{
		const Interval *iv = d->terms[i].param >= 0 ?
		&pv->v[d->terms[i].param].value : &d->terms[i].literal;

		ts = machine_add(ts, iv);
	}
	return ts;
}

/*
 * The longest a duration can last, in microseconds, over every start
 * date: exact without months; with months, every day of 2000 to 2007
 * is tried (leap years every four years there, so "1 year" is 366 days
 * and "1 mon" 31).
 */
static int64
wf_longest(const LcParamValues *pv, const LcDuration *d)
{
	bool		months = false;
	int64		longest = 0;

	for (int i = 0; i < d->n_terms; i++)
	{
		const Interval *iv = d->terms[i].param >= 0 ?
		&pv->v[d->terms[i].param].value : &d->terms[i].literal;

		if (iv->month != 0)
			months = true;
	}
	if (!months)
		return workflow_add(pv, d, WF_DAY_2000) - WF_DAY_2000;
	for (int day = 0; day < 8 * 365 + 2; day++)
	{
		TimestampTz s = WF_DAY_2000 + (TimestampTz) day * USECS_PER_DAY;
		int64		len = workflow_add(pv, d, s) - s;

		if (len > longest)
			longest = len;
	}
	return longest;
}

/*
 * How long an interval lasts, in microseconds, at its longest (or
 * shortest) over every start date, with the timers' arithmetic: "1 mon"
 * is 31 days at its longest and 28 at its shortest.  To hold a bound
 * against a promise (a policy's max_retention), compare the bound with
 * the promise at its shortest.
 */
int64
workflow_interval_span(const Interval *iv, bool longest)
{
	int64		best = -1;

	if (iv->month == 0)
		return machine_add(WF_DAY_2000, iv) - WF_DAY_2000;
	for (int day = 0; day < 8 * 365 + 2; day++)
	{
		TimestampTz s = WF_DAY_2000 + (TimestampTz) day * USECS_PER_DAY;
		int64		len = machine_add(s, iv) - s;

		if (best < 0 || (longest ? len > best : len < best))
			best = len;
	}
	return best;
}

/*
 * The retention bound of every state but none and erased: the chain of
 * timers to erased (one timer a state, so one chain), each counted at its
 * longest.  Allocated in the current context.
 */
int
workflow_bounds(const LcGraph *g, const LcParamValues *pv, LcBound **out)
{
	int			n = g->erased - 1;
	LcBound    *bounds = palloc0(sizeof(LcBound) * Max(n, 1));
	int64	   *longest = palloc0(sizeof(int64) * g->n_states);

	for (int s = 1; s < g->erased; s++)
		longest[s] = wf_longest(pv, &g->states[s].timer.after);

	for (int s = 1; s < g->erased; s++)
	{
		LcBound    *bd = &bounds[s - 1];
		int64		total = 0;
		int			x = s;
		int			steps = 0;

		bd->state = s;
		bd->path = palloc(sizeof(char *) * (2 * g->n_states + 1));
		bd->path[bd->n_path++] = g->states[s].name;
		while (x != g->erased && steps++ < g->n_states)
		{
			const LcGraphTimer *t = &g->states[x].timer;

			total += longest[x];
			bd->path[bd->n_path++] = g->events[t->event].name;
			x = t->to;
			bd->path[bd->n_path++] = g->states[x].name;
		}
		/* a compiled graph always ends in erased (proof 2) */
		Assert(x == g->erased);
		memset(&bd->bound, 0, sizeof(Interval));
		bd->bound.day = (int32) (total / USECS_PER_DAY);
		bd->bound.time = total % USECS_PER_DAY;
	}
	pfree(longest);
	*out = bounds;
	return n;
}

int
graph_state_id(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_states; i++)
		if (g->states[i].name != NULL && strcmp(g->states[i].name, name) == 0)
			return i;
	return -1;
}

int
graph_event_id(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_events; i++)
		if (strcmp(g->events[i].name, name) == 0)
			return i;
	return -1;
}

int
graph_message_id(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_messages; i++)
		if (strcmp(g->messages[i].name, name) == 0)
			return i;
	return -1;
}

const char *
graph_anchor_name(LcAnchor anchor)
{
	Assert(anchor >= 0 && anchor < LC_NUM_ANCHORS);
	return wf_anchor_names[anchor];
}

/*
 * Push a string key and value.
 */
static void
wf_push_kv(JsonbParseState **st, const char *key, const char *val)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v.type = jbvString;
	v.val.string.val = (char *) val;
	v.val.string.len = strlen(val);
	pushJsonbValue(st, WJB_KEY, &k);
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
wf_push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

/*
 * Copy an object, filling in what defaults to: at level "timer", "from"
 * and "deadline"; at level "edge", "role" (given: the event's).
 */
typedef enum WfLevel
{
	WF_ROOT,
	WF_STATES,
	WF_STATE,
	WF_TIMER,
	WF_EVENTS,
	WF_EDGE
} WfLevel;

static JsonbValue *
wf_fill(JsonbParseState **st, const JsonbValue *v, WfLevel level,
		const char *role)
{
	int			n;
	WfPair	   *p = wf_pairs(v, "(root)", &n);
	bool		has_from = false,
				has_deadline = false,
				has_role = false,
				has_desc = false,
				has_params = false,
				has_messages = false;
	const char *event = NULL;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < n; i++)
	{
		const char *k = p[i].key;

		wf_push_key(st, k);
		if ((level == WF_ROOT && strcmp(k, "states") == 0))
			wf_fill(st, &p[i].val, WF_STATES, NULL);
		else if (level == WF_ROOT && strcmp(k, "events") == 0)
			wf_fill(st, &p[i].val, WF_EVENTS, NULL);
		else if (level == WF_STATES)
			wf_fill(st, &p[i].val, WF_STATE, NULL);
		else if (level == WF_STATE && strcmp(k, "timer") == 0)
			wf_fill(st, &p[i].val, WF_TIMER, NULL);
		else if (level == WF_EVENTS)
		{
			int			ne;
			WfPair	   *e = wf_elems(&p[i].val, "(root)", &ne);
			const char *r = "app";

			/* the event's role, given on any edge */
			for (int j = 0; j < ne; j++)
			{
				int			nk;
				WfPair	   *kk = wf_pairs(&e[j].val, "(root)", &nk);

				for (int x = 0; x < nk; x++)
					if (strcmp(kk[x].key, "role") == 0)
						r = pnstrdup(kk[x].val.val.string.val,
									 kk[x].val.val.string.len);
			}
			pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
			for (int j = 0; j < ne; j++)
				wf_fill(st, &e[j].val, WF_EDGE, r);
			pushJsonbValue(st, WJB_END_ARRAY, NULL);
		}
		else
			pushJsonbValue(st, WJB_VALUE, &p[i].val);

		if (strcmp(k, "from") == 0)
			has_from = true;
		else if (strcmp(k, "deadline") == 0)
			has_deadline = true;
		else if (strcmp(k, "role") == 0)
			has_role = true;
		else if (strcmp(k, "description") == 0)
			has_desc = true;
		else if (strcmp(k, "params") == 0)
			has_params = true;
		else if (strcmp(k, "messages") == 0)
			has_messages = true;
		else if (strcmp(k, "event") == 0 && p[i].val.type == jbvString)
			event = pnstrdup(p[i].val.val.string.val, p[i].val.val.string.len);
	}
	if (level == WF_TIMER)
	{
		if (!has_from)
			wf_push_kv(st, "from", "entered");
		if (!has_deadline && event != NULL)
			wf_push_kv(st, "deadline", event);
	}
	else if (level == WF_EDGE && !has_role)
		wf_push_kv(st, "role", role);
	else if (level == WF_ROOT)
	{
		if (!has_desc)
			wf_push_kv(st, "description", "");
		if (!has_params)
		{
			wf_push_key(st, "params");
			pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			pushJsonbValue(st, WJB_END_OBJECT, NULL);
		}
		if (!has_messages)
		{
			wf_push_key(st, "messages");
			pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			pushJsonbValue(st, WJB_END_OBJECT, NULL);
		}
	}
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * The definition as stored: defaults filled in (a timer's "from" and
 * "deadline", an edge's "role", empty description, params, messages).
 */
static Jsonb *
wf_normalize(Jsonb *def)
{
	JsonbParseState *st = NULL;
	JsonbValue	root;
	JsonbValue *res;

	root.type = jbvBinary;
	root.val.binary.data = &def->root;
	root.val.binary.len = VARSIZE(def) - VARHDRSZ;
	/* closing the outermost object returns the whole value */
	res = wf_fill(&st, &root, WF_ROOT, NULL);
	return JsonbValueToJsonb(res);
}
