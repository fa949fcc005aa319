/*-------------------------------------------------------------------------
 *
 * args.c
 *	  Argument checks shared by the SQL-callable functions.
 *
 * Messages name the argument, never its value: a subject, an e-mail
 * address or attrs are personal data and must not reach the server log.
 *
 * IDENTIFICATION
 *	  src/args.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "args.h"

/*
 * A required text argument: not NULL (22004), not empty or blank, not
 * longer than maxlen bytes (22023).
 */
char *
args_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, int maxlen)
{
	char	   *s;
	bool		blank = true;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (const char *p = s; *p; p++)
		if (!isspace((unsigned char) *p))
			blank = false;
	if (blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name)));
	if (strlen(s) > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", name),
				 errdetail("The limit is %d bytes; this one has %zu.",
						   maxlen, strlen(s))));
	return s;
}

/*
 * An optional text argument: NULL stays NULL, otherwise as args_text_arg.
 */
char *
args_opt_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				  int maxlen)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return args_text_arg(fcinfo, argno, name, maxlen);
}

/*
 * A deliberately plain check of an e-mail address, true when it passes:
 * local@domain.tld, printable, no spaces, at most LC_MAX_EMAIL bytes.
 */
bool
args_email_valid(const char *email)
{
	const char *at = strchr(email, '@');
	const char *dot;
	bool		ok = true;

	if (strlen(email) > LC_MAX_EMAIL)
		return false;

	for (const char *p = email; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == '<' || *p == '>' ||
			*p == ',' || *p == ';' || *p == '"' || *p == '\\' || *p == 0x7f)
			ok = false;
	if (at == NULL || at == email || strchr(at + 1, '@') != NULL)
		ok = false;
	else
	{
		dot = strrchr(at + 1, '.');
		if (dot == NULL || dot == at + 1 || dot[1] == '\0' ||
			strstr(at + 1, "..") != NULL)
			ok = false;
	}
	return ok;
}

/*
 * Raise 22023 unless args_email_valid().  The address is not echoed: it
 * is personal data.
 */
void
args_check_email(const char *email)
{
	if (!args_email_valid(email))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid e-mail address"),
				 errhint("Expected an address such as name@example.com.")));
}

/*
 * A required attrs argument: a JSON object (22023) of at most
 * LC_MAX_ATTRS bytes.
 */
Jsonb *
args_attrs_arg(FunctionCallInfo fcinfo, int argno)
{
	return args_object_arg(fcinfo, argno, "attrs");
}

/*
 * A required JSON object argument (attrs, an instance's data) of at most
 * LC_MAX_ATTRS bytes: 22004 when NULL, 22023 when not an object or too
 * large.  Its content is not echoed: it is personal data.
 */
Jsonb *
args_object_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Jsonb	   *obj;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhint("Pass '{}' for no %s.",
						 strcmp(name, "attrs") == 0 ? "attributes" : name)));
	obj = PG_GETARG_JSONB_P(argno);
	if (!JB_ROOT_IS_OBJECT(obj) || JB_ROOT_IS_SCALAR(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", name)));
	if (VARSIZE(obj) > LC_MAX_ATTRS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too large", name),
				 errdetail("The limit is %d bytes; this one has %zu.",
						   LC_MAX_ATTRS, (size_t) VARSIZE(obj))));
	return obj;
}
