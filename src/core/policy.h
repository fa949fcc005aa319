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

/*
 * The policy's intervals, by key: the timers of machine.c name the key
 * they count with, the parser fills them by name (policy_interval_name()).
 */
typedef enum LcIntervalKey
{
	LC_IV_NONE = -1,
	LC_IV_INVITE_EXPIRES_AFTER = 0,
	LC_IV_DORMANT_AFTER,
	LC_IV_ARCHIVE_AFTER,
	LC_IV_ERASE_AFTER,
	LC_IV_EXPIRED_ERASE_AFTER,
	LC_IV_TOUCH_GRANULARITY,
	LC_IV_HISTORY_RETENTION,
	LC_IV_OUTBOX_RETENTION,		/* final messages deleted after this */
	LC_NUM_INTERVALS
} LcIntervalKey;

/* The policy's reminder lists, by key. */
typedef enum LcReminderKey
{
	LC_RM_NONE = -1,
	LC_RM_INVITE = 0,
	LC_RM_ARCHIVE,
	LC_NUM_REMINDER_KEYS
} LcReminderKey;

typedef struct LcPolicy
{
	char	   *name;
	int			version;
	Interval	intervals[LC_NUM_INTERVALS];
	int			n_reminders[LC_NUM_REMINDER_KEYS];
	/* in firing order (machine_prepare_policy()) */
	Interval	reminders[LC_NUM_REMINDER_KEYS][LC_MAX_REMINDERS];
	char	   *channel;		/* NULL: messages are unrouted */
	char	   *hooks[LC_NUM_HOOKS];	/* qualified function names or NULL */
	Oid			hook_oids[LC_NUM_HOOKS];	/* bound at definition */
} LcPolicy;

extern const char *policy_hook_name(LcHook hook);
extern const char *policy_interval_name(LcIntervalKey key);
extern const char *policy_reminder_name(LcReminderKey key);
extern void policy_invalid(const char *key, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();
extern Jsonb *policy_builtin_default(void);
extern Jsonb *policy_merge(Jsonb *base, Jsonb *overlay);
extern LcPolicy *policy_parse(const char *name, int version, Jsonb *def,
							  List *search_schemas, Jsonb **normalized);
extern LcPolicy *policy_get(const char *name, int version);
extern int	policy_latest(const char *name);
extern Oid	policy_hook_oid(LcPolicy *policy, LcHook hook);

#endif							/* LIFECYCLE_POLICY_H */
