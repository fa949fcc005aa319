/*-------------------------------------------------------------------------
 *
 * render.c
 *	  The e-mail of a message: its template rendered with the message's
 *	  data, wrapped in RFC 5322 headers.
 *
 * A template is a subject and a body with {{placeholders}}.  Built-ins:
 * id, message, subject, tenant, email, region, policy, state, archive_at,
 * archive_date and link_base (the channel's "link_base" option), and, for
 * the workflow language, workflow, key, deadline_at and deadline_date
 * (from the payload; the deadline a notice announces, archive_at, until
 * payloads carry deadline_at); any other name is looked up in the user's
 * attrs ({{name}} or {{attrs.name}}), and an unknown name renders as
 * nothing.  The template comes from the channel options:
 * "policy_templates" -> policy -> message, then "templates" -> message,
 * then the message's template in its workflow's definition (the caller
 * passes it: render_mail() knows no message by name); a template given
 * without subject or body takes that part from the next in line.
 * A workflow's templates are checked when it is defined
 * (render_check_template(): known placeholders only, a one-line subject).
 *
 * Substitution is one pass over the template: a value is copied, never
 * read again for placeholders, never executed, never logged.
 *
 * Values never break the message's structure: control characters in the
 * subject become spaces, non-ASCII subjects are RFC 2047 encoded, the body
 * gets CRLF line ends (libcurl dot-stuffs it).  No SPI, no catalog access:
 * it runs outside any transaction.
 *
 * IDENTIFICATION
 *	  src/core/render.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "common/base64.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "render.h"

#define RENDER_MAX_NAME 64
#define RENDER_WORD_BYTES 45	/* bytes per RFC 2047 encoded word */

static bool render_get(JsonbContainer *c, const char *key, JsonbValue *out);
static JsonbContainer *render_object(JsonbContainer *c, const char *key);
static char *render_string(JsonbContainer *c, const char *key);
static char *render_value_text(JsonbValue *v);
static void render_template(StringInfo out, const char *tpl,
							JsonbContainer *payload, JsonbContainer *options,
							const char *message, int64 id);
static char *render_placeholder(const char *name, JsonbContainer *payload,
								JsonbContainer *options, const char *message,
								int64 id);
static void render_subject(StringInfo out, const char *subject);
static void render_body(StringInfo out, const char *body);
static void render_date(StringInfo out);
static const char *render_check_one(JsonbContainer *c);

/*
 * Look up key in a JSON object; false when absent (or c is not an object).
 */
static bool
render_get(JsonbContainer *c, const char *key, JsonbValue *out)
{
	JsonbValue *v;

	if (c == NULL || !JsonContainerIsObject(c))
		return false;
	v = getKeyJsonValueFromContainer(c, key, strlen(key), out);
	return v != NULL;
}

/*
 * The object under key, or NULL.
 */
static JsonbContainer *
render_object(JsonbContainer *c, const char *key)
{
	JsonbValue	v;

	if (!render_get(c, key, &v) || v.type != jbvBinary ||
		!JsonContainerIsObject(v.val.binary.data))
		return NULL;
	return v.val.binary.data;
}

/*
 * The string under key, or NULL.
 */
static char *
render_string(JsonbContainer *c, const char *key)
{
	JsonbValue	v;

	if (!render_get(c, key, &v) || v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/*
 * A JSON value as the text a reader expects: strings without quotes,
 * null as nothing, objects and arrays as JSON.
 */
static char *
render_value_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			return pstrdup("");
	}
}

/*
 * The deadline a message announces (payload "deadline_at", else the
 * notice's "archive_at"), or NULL.
 */
static char *
render_deadline(JsonbContainer *payload)
{
	char	   *s = render_string(payload, "deadline_at");

	return s ? s : render_string(payload, "archive_at");
}

/*
 * The value of one placeholder.
 */
static char *
render_placeholder(const char *name, JsonbContainer *payload,
				   JsonbContainer *options, const char *message, int64 id)
{
	static const char *const from_payload[] = {
		"subject", "tenant", "email", "region", "policy", "state", "archive_at"
	};
	JsonbValue	v;
	JsonbContainer *attrs = render_object(payload, "attrs");

	if (strcmp(name, "id") == 0)
		return psprintf(INT64_FORMAT, id);
	if (strcmp(name, "message") == 0)
		return pstrdup(message);
	if (strcmp(name, "link_base") == 0)
	{
		char	   *s = render_string(options, "link_base");

		return s ? s : pstrdup("");
	}
	if (strcmp(name, "archive_date") == 0)
	{
		char	   *s = render_string(payload, "archive_at");

		if (s != NULL && strlen(s) >= 10)
			s[10] = '\0';
		return s ? s : pstrdup("");
	}
	for (int i = 0; i < lengthof(from_payload); i++)
		if (strcmp(name, from_payload[i]) == 0)
			return render_get(payload, name, &v) ? render_value_text(&v) : pstrdup("");

	/*
	 * The workflow language's names, 0.3.0: a 0.2.0 payload lacks them, and
	 * a 0.2.0 channel template naming an attr so still gets the attr.
	 */
	if (strcmp(name, "workflow") == 0 || strcmp(name, "key") == 0)
	{
		if (render_get(payload, name, &v))
			return render_value_text(&v);
	}
	else if (strcmp(name, "deadline_at") == 0 || strcmp(name, "deadline_date") == 0)
	{
		char	   *s = render_deadline(payload);

		if (s != NULL)
		{
			if (name[9] == 'd' && strlen(s) >= 10)
				s[10] = '\0';
			return s;
		}
	}
	if (strncmp(name, "attrs.", 6) == 0)
		name += 6;
	if (render_get(attrs, name, &v))
		return render_value_text(&v);
	return pstrdup("");
}

/*
 * Append tpl with every {{name}} replaced.  Text that only looks like a
 * placeholder (no closing braces, a name with odd characters) is copied.
 */
static void
render_template(StringInfo out, const char *tpl, JsonbContainer *payload,
				JsonbContainer *options, const char *message, int64 id)
{
	const char *p = tpl;

	while (*p)
	{
		const char *open = strstr(p, "{{");
		const char *close;
		char		name[RENDER_MAX_NAME + 1];
		const char *s;
		const char *e;
		bool		ok = true;

		if (open == NULL)
			break;
		close = strstr(open + 2, "}}");
		if (close == NULL)
			break;
		s = open + 2;
		e = close;
		while (s < e && *s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			e--;
		if (e - s == 0 || e - s > RENDER_MAX_NAME)
			ok = false;
		for (const char *q = s; ok && q < e; q++)
			if (!(isalnum((unsigned char) *q) || *q == '_' || *q == '.' || *q == '-'))
				ok = false;
		appendBinaryStringInfo(out, p, open - p);
		if (!ok)
		{
			appendBinaryStringInfo(out, open, 2);
			p = open + 2;
			continue;
		}
		memcpy(name, s, e - s);
		name[e - s] = '\0';
		appendStringInfoString(out, render_placeholder(name, payload, options,
													   message, id));
		p = close + 2;
	}
	appendStringInfoString(out, p);
}

/*
 * The Subject header's value: one line, RFC 2047 encoded words when it is
 * not plain ASCII (split on character boundaries).
 */
static void
render_subject(StringInfo out, const char *subject)
{
	char	   *s = pstrdup(subject);
	bool		ascii = true;
	int			len;

	for (char *p = s; *p; p++)
	{
		if ((unsigned char) *p < 0x20 || *p == 0x7F)
			*p = ' ';
		if ((unsigned char) *p >= 0x80)
			ascii = false;
	}
	len = strlen(s);
	if (len > 900)
	{
		len = pg_mbcliplen(s, len, 900);
		s[len] = '\0';
	}
	if (ascii)
	{
		appendStringInfoString(out, s);
		return;
	}
	for (int pos = 0; pos < len;)
	{
		int			chunk = pg_mbcliplen(s + pos, len - pos, RENDER_WORD_BYTES);
		char		enc[128];
		int			n;

		if (chunk <= 0)
			chunk = Min(len - pos, RENDER_WORD_BYTES);
		n = pg_b64_encode(s + pos, chunk, enc, sizeof(enc) - 1);
		if (n < 0)
			n = 0;
		enc[n] = '\0';
		if (pos > 0)
			appendStringInfoString(out, "\r\n ");
		appendStringInfo(out, "=?UTF-8?B?%s?=", enc);
		pos += chunk;
	}
}

/*
 * The body with CRLF line ends, ending in CRLF.
 */
static void
render_body(StringInfo out, const char *body)
{
	for (const char *p = body; *p; p++)
	{
		if (*p == '\r')
		{
			appendStringInfoString(out, "\r\n");
			if (p[1] == '\n')
				p++;
		}
		else if (*p == '\n')
			appendStringInfoString(out, "\r\n");
		else
			appendStringInfoChar(out, *p);
	}
	if (out->len < 2 || out->data[out->len - 1] != '\n')
		appendStringInfoString(out, "\r\n");
}

/*
 * The Date header's value: now, in UTC, with English names whatever the
 * locale.
 */
static void
render_date(StringInfo out)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t		now = time(NULL);
	struct tm	tm;

	gmtime_r(&now, &tm);
	appendStringInfo(out, "%s, %02d %s %04d %02d:%02d:%02d +0000",
					 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
					 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The whole e-mail of a message (headers, blank line, text) for libcurl's
 * upload; *len gets its length.  wf_subject and wf_text are the
 * message's template in its workflow's definition (NULL: none); the
 * channel's templates take precedence over it.
 */
char *
render_mail(const char *message, int64 id, Jsonb *payload, Jsonb *options,
			const char *wf_subject, const char *wf_text, const char *from,
			size_t *len)
{
	JsonbContainer *pc = &payload->root;
	JsonbContainer *oc = &options->root;
	const char *subject_tpl = NULL;
	const char *body_tpl = NULL;
	char	   *policy = render_string(pc, "policy");
	char	   *to = render_string(pc, "email");
	const char *domain = strrchr(from, '@');
	StringInfoData subject;
	StringInfoData body;
	StringInfoData mail;

	/* policy_templates.<policy>.<message>, templates.<message>, workflow */
	if (policy != NULL)
	{
		JsonbContainer *t = render_object(render_object(render_object(oc, "policy_templates"),
														policy), message);

		if (t != NULL)
		{
			subject_tpl = render_string(t, "subject");
			body_tpl = render_string(t, "body");
		}
	}
	{
		JsonbContainer *t = render_object(render_object(oc, "templates"), message);

		if (t != NULL)
		{
			if (subject_tpl == NULL)
				subject_tpl = render_string(t, "subject");
			if (body_tpl == NULL)
				body_tpl = render_string(t, "body");
		}
	}
	if (subject_tpl == NULL)
		subject_tpl = wf_subject ? wf_subject : "{{message}}";
	if (body_tpl == NULL)
		body_tpl = wf_text ? wf_text : "{{message}}\n";

	initStringInfo(&subject);
	render_template(&subject, subject_tpl, pc, oc, message, id);
	initStringInfo(&body);
	render_template(&body, body_tpl, pc, oc, message, id);

	initStringInfo(&mail);
	appendStringInfo(&mail, "From: <%s>\r\n", from);
	appendStringInfo(&mail, "To: <%s>\r\n", to ? to : "");
	appendStringInfoString(&mail, "Subject: ");
	render_subject(&mail, subject.data);
	appendStringInfoString(&mail, "\r\nDate: ");
	render_date(&mail);
	appendStringInfo(&mail, "\r\nMessage-ID: <lifecycle-" INT64_FORMAT "@%s>\r\n",
					 id, domain ? domain + 1 : "localhost");
	appendStringInfoString(&mail,
						   "MIME-Version: 1.0\r\n"
						   "Content-Type: text/plain; charset=utf-8\r\n"
						   "Content-Transfer-Encoding: 8bit\r\n");
	appendStringInfo(&mail, "X-Lifecycle-Message: %s\r\n\r\n", message);
	render_body(&mail, body.data);
	*len = mail.len;
	return mail.data;
}

/*
 * Check one template object: only "subject" and "body", both strings.
 */
static const char *
render_check_one(JsonbContainer *c)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		else if (tok == WJB_KEY && depth == 1)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			if (strcmp(key, "subject") != 0 && strcmp(key, "body") != 0)
				return psprintf("unknown template key \"%s\" (expected \"subject\" and \"body\")", key);
		}
		else if (tok == WJB_VALUE && depth == 1 && v.type != jbvString)
			return "template subject and body must be strings";
	}
	return NULL;
}

/*
 * Check the "templates" option (message -> template) or, with by_policy,
 * the "policy_templates" option (policy -> message -> template); known
 * says whether some workflow declares a message.  NULL when valid, else
 * what is wrong.
 */
const char *
render_check_templates(Jsonb *templates, bool by_policy,
					   bool (*known) (const char *message))
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(templates) || JB_ROOT_IS_SCALAR(templates))
		return by_policy ? "policy_templates must be an object of policy names"
			: "templates must be an object of message names";
	it = JsonbIteratorInit(&templates->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;
		const char *problem;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || v.type != jbvBinary ||
			!JsonContainerIsObject(v.val.binary.data))
			return psprintf("the template for \"%s\" must be an object", key);
		if (by_policy)
		{
			Jsonb	   *inner = JsonbValueToJsonb(&v);

			problem = render_check_templates(inner, false, known);
		}
		else
		{
			if (!known(key))
				return psprintf("unknown message \"%s\" (no workflow declares it under \"messages\")", key);
			problem = render_check_one(v.val.binary.data);
		}
		if (problem != NULL)
			return problem;
	}
	return NULL;
}

/*
 * Is name a placeholder a workflow's template may use?
 */
static bool
render_known_placeholder(const char *name)
{
	static const char *const builtins[] = {
		"id", "message", "subject", "tenant", "email", "region", "policy",
		"state", "workflow", "key", "link_base", "deadline_at", "deadline_date",
		"archive_at", "archive_date"
	};

	for (int i = 0; i < lengthof(builtins); i++)
		if (strcmp(name, builtins[i]) == 0)
			return true;
	return strncmp(name, "attrs.", 6) == 0 && name[6] != '\0';
}

/*
 * Check one template text of a workflow definition (its subject when
 * subject is set): every "{{" closed by "}}" around a known placeholder
 * (render_known_placeholder()), a subject on one line.  NULL when valid,
 * else what is wrong (a placeholder is named only when it is made of the
 * characters a name may have).
 */
const char *
render_check_template(const char *tpl, bool subject)
{
	const char *p = tpl;
	const char *open;

	if (subject && strpbrk(tpl, "\r\n") != NULL)
		return "a subject is one line (no line breaks)";
	while ((open = strstr(p, "{{")) != NULL)
	{
		const char *close = strstr(open + 2, "}}");
		const char *s = open + 2;
		const char *e;
		char		name[RENDER_MAX_NAME + 1];

		if (close == NULL)
			return "\"{{\" without a closing \"}}\"";
		e = close;
		while (s < e && *s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			e--;
		if (e - s == 0 || e - s > RENDER_MAX_NAME)
			return psprintf("a placeholder has 1 to %d bytes between \"{{\" and \"}}\"",
							RENDER_MAX_NAME);
		for (const char *q = s; q < e; q++)
			if (!(isalnum((unsigned char) *q) || *q == '_' || *q == '.' || *q == '-'))
				return "a placeholder is made of letters, digits, \"_\", \".\" and \"-\"";
		memcpy(name, s, e - s);
		name[e - s] = '\0';
		if (!render_known_placeholder(name))
			return psprintf("unknown placeholder {{%s}} (expected id, message, subject, tenant, email, region, policy, state, workflow, key, link_base, deadline_at, deadline_date, archive_at, archive_date or attrs.KEY)",
							name);
		p = close + 2;
	}
	return NULL;
}

/*
 * Is address usable as an envelope and header address?  NULL if so.
 */
const char *
render_check_address(const char *address)
{
	const char *at = strchr(address, '@');

	for (const char *p = address; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == '<' || *p == '>' || *p == ',' ||
			*p == ';' || *p == '"' || *p == '\\' || *p == 0x7F)
			return "an address must not contain spaces, control characters or <>,;\"\\";
	if (at == NULL || at == address || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return "expected an address such as lifecycle@example.com";
	if (strlen(address) > 254)
		return "an address is at most 254 bytes";
	return NULL;
}
