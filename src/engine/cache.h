/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  Backend caches of the small, rarely written tables read on every
 *	  call: the clock offset, the tenant grants, the latest policy versions
 *	  and the parsed policies.
 *
 * IDENTIFICATION
 *	  src/cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_CACHE_H
#define LIFECYCLE_CACHE_H

#include "datatype/timestamp.h"

/* The built-in workflow the 0.2.0 API and lifecycle.users run. */
#define LC_USER_WORKFLOW "user"

extern const Interval *cache_clock_offset(void);
extern void cache_clock_set(const Interval *offset);
extern bool cache_tenant_grants_exist(void);
extern bool cache_tenant_allowed(Oid roleid, const char *tenant);
extern bool cache_tenant_role_limited(Oid roleid);
extern int	cache_policy_latest(const char *name);
extern struct LcPolicy *cache_policy(const char *name, int version);
extern void cache_policy_forget(void);
extern const struct LcGraph *cache_graph(const char *name, int version);
extern int	cache_workflow_latest(const char *name);

#endif							/* LIFECYCLE_CACHE_H */
