/*-------------------------------------------------------------------------
 *
 * render.c
 *	  The e-mail of a message: its template rendered with the message's
 *	  data, wrapped in RFC 5322 headers.
 *
 * A template is a subject and a body with {{placeholders}}.  Built-ins:
 * id, message, subject, tenant, email, region, policy, state, archive_at,
 * archive_date and link_base (the channel's "link_base" option); any other
 * name is looked up in the user's attrs ({{name}} or {{attrs.name}}), and
 * an unknown name renders as nothing.  The template comes from the channel
 * options: "policy_templates" -> policy -> message, then "templates" ->
 * message, then the default set below; a template given without subject
 * or body takes that part from the next in line.
 *
 * Values never break the message's structure: control characters in the
 * subject become spaces, non-ASCII subjects are RFC 2047 encoded, the body
 * gets CRLF line ends (libcurl dot-stuffs it).  No SPI, no catalog access:
 * it runs outside any transaction.
 *
 * IDENTIFICATION
 *	  src/render.c
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

typedef struct RenderTemplate
{
	const char *message;
	const char *subject;
	const char *body;
} RenderTemplate;

/* The default set, one per message the lifecycle writes. */
static const RenderTemplate render_defaults[] = {
	{"invite",
		"You are invited to {{tenant}}",
		"Hello,\n\n"
		"You have been invited to open an account with {{tenant}}.\n"
		"To accept, register with this e-mail address: {{link_base}}\n"
	},
	{"invite_reminder",
		"Reminder: your invitation to {{tenant}} is waiting",
		"Hello,\n\n"
		"You were invited to open an account with {{tenant}} and have not "
		"registered yet.\n"
		"To accept, register with this e-mail address: {{link_base}}\n"
	},
	{"archive_notice",
		"Your {{tenant}} account will be archived on {{archive_date}}",
		"Hello,\n\n"
		"Your account {{subject}} with {{tenant}} has not been used for a "
		"while.\n"
		"Following our retention policy it will be archived on {{archive_date}}.\n"
		"To keep it, simply sign in before then: {{link_base}}\n"
	},
	{"archive_reminder",
		"Reminder: your {{tenant}} account will be archived on {{archive_date}}",
		"Hello,\n\n"
		"This is a reminder that your account {{subject}} with {{tenant}} "
		"will be archived on {{archive_date}}.\n"
		"To keep it, simply sign in before then: {{link_base}}\n"
	},
	{"archived",
		"Your {{tenant}} account has been archived",
		"Hello,\n\n"
		"Your account {{subject}} with {{tenant}} has been archived following "
		"our retention policy.\n"
		"If you want to come back, you can ask for it to be restored: {{link_base}}\n"
	},
	{"restored",
		"Welcome back to {{tenant}}",
		"Hello,\n\n"
		"Your account {{subject}} with {{tenant}} has been restored.\n"
		"For your security, set a new password before you sign in: {{link_base}}\n"
	},
};

#define RENDER_NUM_DEFAULTS lengthof(render_defaults)
#define RENDER_MAX_NAME 64
#define RENDER_WORD_BYTES 45	/* bytes per RFC 2047 encoded word */

static const RenderTemplate *render_default(const char *message);
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
 * The default template of a message, or NULL for an unknown message.
 */
static const RenderTemplate *
render_default(const char *message)
{
	for (int i = 0; i < RENDER_NUM_DEFAULTS; i++)
		if (strcmp(render_defaults[i].message, message) == 0)
			return &render_defaults[i];
	return NULL;
}

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
 * upload; *len gets its length.
 */
char *
render_mail(const char *message, int64 id, Jsonb *payload, Jsonb *options,
			const char *from, size_t *len)
{
	JsonbContainer *pc = &payload->root;
	JsonbContainer *oc = &options->root;
	const RenderTemplate *def = render_default(message);
	const char *subject_tpl = NULL;
	const char *body_tpl = NULL;
	char	   *policy = render_string(pc, "policy");
	char	   *to = render_string(pc, "email");
	const char *domain = strrchr(from, '@');
	StringInfoData subject;
	StringInfoData body;
	StringInfoData mail;

	/* policy_templates.<policy>.<message>, templates.<message>, default */
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
		subject_tpl = def ? def->subject : "{{message}}";
	if (body_tpl == NULL)
		body_tpl = def ? def->body : "{{message}}\n";

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
 * the "policy_templates" option (policy -> message -> template).  NULL
 * when valid, else what is wrong.
 */
const char *
render_check_templates(Jsonb *templates, bool by_policy)
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

			problem = render_check_templates(inner, false);
		}
		else
		{
			if (render_default(key) == NULL)
				return psprintf("unknown message \"%s\" (expected invite, invite_reminder, archive_notice, archive_reminder, archived or restored)", key);
			problem = render_check_one(v.val.binary.data);
		}
		if (problem != NULL)
			return problem;
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
