/*-------------------------------------------------------------------------
 *
 * acting.c
 *	  The acting role and its tenant limits.
 *
 * The C API functions are SECURITY DEFINER, so current_user inside them is
 * the extension's owner; the role acting is found here instead.  A caller
 * is limited to some tenants if the session user, or the role it set with
 * SET ROLE, or (inside a hook) the hook's owner is: SET ROLE to a group
 * role never lifts a limit, and a hook run by the (superuser) worker acts
 * with its owner's limits, never the worker's.  Every check of tenant
 * limits, in C and in the SQL helpers, comes through this file; the grants
 * themselves are cached by cache.c.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/acting.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "acting.h"
#include "args.h"
#include "cache.h"

#define ACTING_MAX_ROLES 3

PG_FUNCTION_INFO_V1(lifecycle_check_tenant);
PG_FUNCTION_INFO_V1(lifecycle_tenant_visible);
PG_FUNCTION_INFO_V1(lifecycle_check_unlimited);
PG_FUNCTION_INFO_V1(lifecycle_tenants_unlimited);
PG_FUNCTION_INFO_V1(lifecycle_actor);

/* The running hook's owner, InvalidOid outside hooks. */
typedef struct ActingState
{
	Oid			hook_owner;
} ActingState;

/* lifecycle._tenant_visible()'s answers within one statement. */
typedef struct ActingVisibleCache
{
	Oid			roles[ACTING_MAX_ROLES];
	int			nroles;
	bool		unlimited;
	int			n;
	char	   *tenants[64];
	bool		visible[64];
} ActingVisibleCache;

static ActingState acting_state;

static int	acting_roles(Oid *roles);
static bool acting_role_limited(Oid roleid);
static bool acting_allowed(const Oid *roles, int nroles, const char *tenant,
						   Oid *refused);
static Oid	acting_limited_role(void);

/*
 * The roles whose limits apply to the caller: the session user, the role
 * it set with SET ROLE (current_user outside SECURITY DEFINER functions,
 * which ours are), and while a hook runs, the hook's owner.  The caller is
 * limited if any of them is.  Returns how many.
 */
static int
acting_roles(Oid *roles)
{
	int			n = 0;

	roles[n++] = GetSessionUserId();
	if (GetOuterUserId() != roles[0])
		roles[n++] = GetOuterUserId();
	if (OidIsValid(acting_state.hook_owner) &&
		acting_state.hook_owner != roles[n - 1] &&
		acting_state.hook_owner != roles[0])
		roles[n++] = acting_state.hook_owner;
	return n;
}

/*
 * The name recorded as actor: inside a hook its owner, else the role set
 * with SET ROLE, else the session user.
 */
const char *
acting_actor(void)
{
	if (OidIsValid(acting_state.hook_owner))
		return GetUserNameFromId(acting_state.hook_owner, false);
	return GetUserNameFromId(GetOuterUserId(), false);
}

/*
 * Is this one role limited by some grant (directly or by membership)?
 */
static bool
acting_role_limited(Oid roleid)
{
	if (!OidIsValid(roleid) || superuser_arg(roleid))
		return false;
	return cache_tenant_role_limited(roleid);
}

/*
 * May every one of the roles act on tenant?  *refused (if given) gets the
 * first role that may not.
 */
static bool
acting_allowed(const Oid *roles, int nroles, const char *tenant, Oid *refused)
{
	for (int i = 0; i < nroles; i++)
	{
		if (!OidIsValid(roles[i]) || superuser_arg(roles[i]))
			continue;
		if (!cache_tenant_allowed(roles[i], tenant))
		{
			if (refused)
				*refused = roles[i];
			return false;
		}
	}
	return true;
}

/*
 * Refuse (42501) when the acting role is limited to other tenants.  The
 * message names the role whose limit applies (the session user after SET
 * ROLE, the owner inside a hook).
 */
void
acting_check_tenant(const char *tenant)
{
	Oid			roles[ACTING_MAX_ROLES];
	Oid			refused = InvalidOid;
	int			n;

	/* No grant at all (the common case): nobody is limited. */
	if (!cache_tenant_grants_exist())
		return;
	n = acting_roles(roles);
	if (!acting_allowed(roles, n, tenant, &refused))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not act on tenant \"%s\"",
						GetUserNameFromId(refused, false), tenant),
				 errhint("See lifecycle.tenant_grants.")));
}

/*
 * May the acting role see rows of tenant?
 */
bool
acting_tenant_visible(const char *tenant)
{
	Oid			roles[ACTING_MAX_ROLES];
	int			n;

	if (!cache_tenant_grants_exist())
		return true;
	n = acting_roles(roles);
	return acting_allowed(roles, n, tenant, NULL);
}

/*
 * The first of the acting roles that some grant limits, InvalidOid when
 * none is.
 */
static Oid
acting_limited_role(void)
{
	Oid			roles[ACTING_MAX_ROLES];
	int			n;

	if (!cache_tenant_grants_exist())
		return InvalidOid;
	n = acting_roles(roles);
	for (int i = 0; i < n; i++)
		if (acting_role_limited(roles[i]))
			return roles[i];
	return InvalidOid;
}

/*
 * Is the acting role limited to some tenants?
 */
bool
acting_is_limited(void)
{
	return OidIsValid(acting_limited_role());
}

/*
 * 42501 when the acting role is limited to some tenants.
 */
void
acting_require_unlimited(const char *what)
{
	Oid			limited = acting_limited_role();

	if (OidIsValid(limited))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is limited to some tenants",
						GetUserNameFromId(limited, false)),
				 errdetail("Only a role without tenant limits may %s.", what),
				 errhint("Ask an admin without tenant limits (no row in lifecycle.tenant_grants).")));
}

/*
 * A hook owned by "owner" starts: lifecycle functions it calls act as that
 * owner.  Returns the previous owner (hooks nest through lifecycle calls).
 */
Oid
acting_hook_enter(Oid owner)
{
	Oid			saved = acting_state.hook_owner;

	acting_state.hook_owner = owner;
	return saved;
}

/*
 * The hook ended (or failed): restore the previous owner.
 */
void
acting_hook_exit(Oid saved)
{
	acting_state.hook_owner = saved;
}

/*
 * lifecycle._check_tenant(tenant): 42501 unless the acting role may act
 * on the tenant (for the SQL-language functions).
 */
Datum
lifecycle_check_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant = args_text_arg(fcinfo, 0, "tenant", LC_MAX_TENANT);

	SPI_connect();
	acting_check_tenant(tenant);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * lifecycle._check_unlimited(what): 42501 when the acting role is limited
 * to some tenants (for the SQL-language functions).
 */
Datum
lifecycle_check_unlimited(PG_FUNCTION_ARGS)
{
	char	   *what = args_text_arg(fcinfo, 0, "what", NAMEDATALEN);

	SPI_connect();
	acting_require_unlimited(what);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * lifecycle._tenants_unlimited() -> may the acting role see every tenant?
 * (No acting role is limited by a grant, so lifecycle._tenant_visible() is
 * true of every tenant.)  The views read it once per statement, as an
 * InitPlan, and call _tenant_visible() per row only when it is false.
 */
Datum
lifecycle_tenants_unlimited(PG_FUNCTION_ARGS)
{
	bool		unlimited;

	SPI_connect();
	unlimited = !acting_is_limited();
	SPI_finish();
	PG_RETURN_BOOL(unlimited);
}

/*
 * lifecycle._actor() -> the acting role's name.
 */
Datum
lifecycle_actor(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(acting_actor())));
}

/*
 * lifecycle._tenant_visible(tenant) -> may the acting role see rows of
 * this tenant in the views?
 */
Datum
lifecycle_tenant_visible(PG_FUNCTION_ARGS)
{
	ActingVisibleCache *cache = (ActingVisibleCache *) fcinfo->flinfo->fn_extra;
	Oid			roles[ACTING_MAX_ROLES];
	int			nroles;
	char	   *tenant;
	bool		ok;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	nroles = acting_roles(roles);
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));

	/*
	 * A view calls this once per row: remember the answers for the rest of
	 * the statement (the FmgrInfo lives as long as the query).
	 */
	if (cache == NULL || cache->nroles != nroles ||
		memcmp(cache->roles, roles, sizeof(Oid) * nroles) != 0)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									   sizeof(ActingVisibleCache));
		memcpy(cache->roles, roles, sizeof(Oid) * nroles);
		cache->nroles = nroles;
		cache->unlimited = true;
		for (int i = 0; i < nroles; i++)
			if (OidIsValid(roles[i]) && !superuser_arg(roles[i]))
				cache->unlimited = false;
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->unlimited)
		PG_RETURN_BOOL(true);
	for (int i = 0; i < cache->n; i++)
		if (strcmp(cache->tenants[i], tenant) == 0)
			PG_RETURN_BOOL(cache->visible[i]);

	SPI_connect();
	ok = acting_allowed(roles, nroles, tenant, NULL);
	SPI_finish();

	if (cache->n < lengthof(cache->tenants))
	{
		cache->tenants[cache->n] = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, tenant);
		cache->visible[cache->n] = ok;
		cache->n++;
	}
	PG_RETURN_BOOL(ok);
}
