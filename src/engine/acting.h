/*-------------------------------------------------------------------------
 *
 * acting.h
 *	  Who is acting, and which tenants that role may act on.
 *
 * A role listed in lifecycle.tenant_grants (directly or through a role it
 * is a member of) is limited to the tenants listed for it; a role with no
 * row, and every superuser, is not limited.  The C API and the SQL helpers
 * (lifecycle._check_tenant(), _tenant_visible(), _check_unlimited(),
 * _actor()) all decide here.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/acting.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_ACTING_H
#define LIFECYCLE_ACTING_H

/* The name recorded as actor in history, erasures and policies. */
extern const char *acting_actor(void);

/* 42501 unless the acting role may act on tenant. */
extern void acting_check_tenant(const char *tenant);

/* May the acting role see rows of tenant (views, row-level security)? */
extern bool acting_tenant_visible(const char *tenant);

/* Is the acting role limited to some tenants? */
extern bool acting_is_limited(void);

/*
 * 42501 when the acting role is limited to some tenants.  For what
 * concerns every tenant at once (policies, channels, the clock, tenant
 * grants, migration): "what" names it in the error's detail, as a verb
 * phrase ("define policies").
 */
extern void acting_require_unlimited(const char *what);

/*
 * Around a hook call: while the hook runs, lifecycle functions act as the
 * hook's owner (with that owner's tenant limits).  acting_hook_enter()
 * returns what acting_hook_exit() must restore.
 */
extern Oid	acting_hook_enter(Oid owner);
extern void acting_hook_exit(Oid saved);

#endif							/* LIFECYCLE_ACTING_H */
