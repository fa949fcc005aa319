/*-------------------------------------------------------------------------
 *
 * policy.h
 *	  Policies: a workflow's parameter values plus the generic keys,
 *	  parsed and validated against the workflow's compiled graph, cached.
 *
 * IDENTIFICATION
 *	  src/core/policy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_POLICY_H
#define LIFECYCLE_POLICY_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "graph.h"

#define LC_MAX_REMINDERS 16

typedef struct LcPolicy
{
	char	   *name;
	int			version;
	const LcGraph *graph;		/* the workflow version it parameterises */
	LcParamValues params;		/* by param id; lists in firing order */
	Interval	touch_granularity;
	Interval	history_retention;
	Interval	outbox_retention;
	bool		has_max_retention;
	Interval	max_retention;
	char	   *channel;		/* NULL: messages are unrouted */
	char	  **hooks;			/* by graph hook id: qualified function
								 * names or NULL */
	Oid		   *hook_oids;		/* by graph hook id: bound at definition */
} LcPolicy;

extern void policy_invalid(const char *key, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();
extern Jsonb *policy_defaults(const LcGraph *g);
extern Jsonb *policy_merge(Jsonb *base, Jsonb *overlay);
extern LcPolicy *policy_parse(const LcGraph *g, const char *name, int version,
							  Jsonb *def, List *search_schemas,
							  Jsonb **normalized);
extern LcPolicy *policy_get(const char *name, int version);
extern int	policy_latest(const char *name);
extern Oid	policy_hook_oid(LcPolicy *policy, int hook);
extern int	policy_param(const LcGraph *g, const char *name);
extern char *policy_workflow_key(Jsonb *def);
extern Jsonb *policy_known_keys(const LcGraph *g, Jsonb *def);
extern void policy_check_max_retention(const LcPolicy *p, const char *what);

#endif							/* LIFECYCLE_POLICY_H */
