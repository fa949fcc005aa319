/*-------------------------------------------------------------------------
 *
 * acting.c
 *	  The acting role and its tenant limits.
 *
 * The C API functions are SECURITY DEFINER, so current_user inside them is
 * the extension's owner; the role acting is found here instead.  Every
 * check of tenant limits, in C and in the SQL helpers, comes through this
 * file; the grants themselves are cached by cache.c.  Callers are
 * connected to SPI.
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
#include "utils/guc.h"

#include "acting.h"
#include "args.h"
#include "cache.h"

#define ACTING_MAX_ROLES 3

PG_FUNCTION_INFO_V1(lifecycle_check_tenant);
PG_FUNCTION_INFO_V1(lifecycle_tenant_visible);
PG_FUNCTION_INFO_V1(lifecycle_check_unlimited);
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
static bool acting_allowed(const Oid *roles, int nroles, const char *tenant);

/*
 * The roles whose limits apply to the caller.  Returns how many.
 */
static int
acting_roles(Oid *roles)
{
	const char *role = GetConfigOption("role", false, false);

	if (role != NULL && strcmp(role, "none") != 0 && role[0] != '\0')
		roles[0] = get_role_oid(role, true);
	else
		roles[0] = GetSessionUserId();
	return 1;
}

/*
 * The name recorded as actor: the role set with SET ROLE, else the
 * session user.
 */
const char *
acting_actor(void)
{
	const char *role = GetConfigOption("role", false, false);

	if (role != NULL && strcmp(role, "none") != 0 && role[0] != '\0')
		return role;
	return GetUserNameFromId(GetSessionUserId(), false);
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
 * May every one of the roles act on tenant?
 */
static bool
acting_allowed(const Oid *roles, int nroles, const char *tenant)
{
	for (int i = 0; i < nroles; i++)
	{
		if (!OidIsValid(roles[i]) || superuser_arg(roles[i]))
			continue;
		if (!cache_tenant_allowed(roles[i], tenant))
			return false;
	}
	return true;
}

/*
 * Refuse (42501) when the acting role is limited to other tenants.
 */
void
acting_check_tenant(const char *tenant)
{
	Oid			roles[ACTING_MAX_ROLES];
	int			n;

	/* No grant at all (the common case): nobody is limited. */
	if (!cache_tenant_grants_exist())
		return;
	n = acting_roles(roles);
	if (!acting_allowed(roles, n, tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not act on tenant \"%s\"",
						acting_actor(), tenant),
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
	return acting_allowed(roles, n, tenant);
}

/*
 * Is the acting role limited to some tenants?
 */
bool
acting_is_limited(void)
{
	Oid			roles[ACTING_MAX_ROLES];
	int			n;

	if (!cache_tenant_grants_exist())
		return false;
	n = acting_roles(roles);
	for (int i = 0; i < n; i++)
		if (acting_role_limited(roles[i]))
			return true;
	return false;
}

/*
 * 42501 when the acting role is limited to some tenants.
 */
void
acting_require_unlimited(const char *what)
{
	if (acting_is_limited())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is limited to some tenants", acting_actor()),
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
	ok = acting_allowed(roles, nroles, tenant);
	SPI_finish();

	if (cache->n < lengthof(cache->tenants))
	{
		cache->tenants[cache->n] = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, tenant);
		cache->visible[cache->n] = ok;
		cache->n++;
	}
	PG_RETURN_BOOL(ok);
}
