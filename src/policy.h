/*-------------------------------------------------------------------------
 *
 * policy.h
 *	  Retention policies: parsed, validated, cached.
 *
 * IDENTIFICATION
 *	  src/policy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_POLICY_H
#define LIFECYCLE_POLICY_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#define LC_MAX_REMINDERS 16

typedef enum LcHook
{
	LC_HOOK_NONE = -1,
	LC_HOOK_ARCHIVE = 0,
	LC_HOOK_RESTORE,
	LC_HOOK_ERASE,
	LC_NUM_HOOKS
} LcHook;

typedef struct LcPolicy
{
	char	   *name;
	int			version;
	int			n_invite_reminders;
	Interval	invite_reminders[LC_MAX_REMINDERS]; /* ascending */
	Interval	invite_expires_after;
	Interval	dormant_after;
	Interval	archive_after;
	int			n_archive_reminders;
	Interval	archive_reminders[LC_MAX_REMINDERS];	/* descending: first
														 * fired first */
	Interval	erase_after;
	Interval	expired_erase_after;
	Interval	touch_granularity;
	Interval	history_retention;
	char	   *channel;		/* NULL: messages are unrouted */
	char	   *hooks[LC_NUM_HOOKS];	/* qualified function names or NULL */
	Oid			hook_oids[LC_NUM_HOOKS];	/* resolved lazily */
} LcPolicy;

extern const char *policy_hook_name(LcHook hook);
extern Jsonb *policy_builtin_default(void);
extern Jsonb *policy_merge(Jsonb *base, Jsonb *overlay);
extern LcPolicy *policy_parse(const char *name, int version, Jsonb *def,
							  List *search_schemas, Jsonb **normalized);
extern LcPolicy *policy_get(const char *name, int version);
extern Oid	policy_hook_oid(LcPolicy *policy, LcHook hook);

#endif							/* LIFECYCLE_POLICY_H */
