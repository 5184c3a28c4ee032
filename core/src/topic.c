/*
 * topic.c - topic names and topic filters: validation and matching
 * (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2).
 *
 * The same rule has different ids in the two versions (the '#' rule is
 * [MQTT-4.7.1-2] in 3.1.1 and [MQTT-4.7.1-1] in 5.0), so messages name both.
 */
#include "topic.h"

#include "utf8.h"

#define TOPIC_MAX 65535u

static const char MSG_EMPTY[] =
    "Topic Names and Topic Filters must be at least one character long "
    "(MQTT 3.1.1 and 5.0 [MQTT-4.7.3-1])";
static const char MSG_TOO_LONG[] =
    "Topic Names and Topic Filters must not encode to more than 65535 bytes "
    "(MQTT 3.1.1 and 5.0 [MQTT-4.7.3-3])";
static const char MSG_NAME_WILDCARD[] =
    "wildcard characters '+' and '#' must not be used within a Topic Name "
    "(MQTT 3.1.1 [MQTT-4.7.1-1], 5.0 [MQTT-4.7.0-1])";
static const char MSG_HASH[] =
    "'#' must be the last character and occupy a whole level "
    "(MQTT 3.1.1 [MQTT-4.7.1-2], 5.0 [MQTT-4.7.1-1])";
static const char MSG_PLUS[] =
    "'+' must occupy an entire level of the filter "
    "(MQTT 3.1.1 [MQTT-4.7.1-3], 5.0 [MQTT-4.7.1-2])";
static const char MSG_SHARE_EMPTY[] =
    "'$share/' must be followed by a ShareName at least one character long "
    "(MQTT 5.0 [MQTT-4.8.2-1])";
static const char MSG_SHARE_CHARS[] =
    "a ShareName must not contain '/', '+' or '#' (MQTT 5.0 [MQTT-4.8.2-2])";
static const char MSG_SHARE_FILTER[] =
    "a ShareName must be followed by '/' and a Topic Filter (MQTT 5.0 [MQTT-4.8.2-2])";
static const char MSG_UTF8[] =
    "Topic Names and Topic Filters must be well-formed UTF-8 "
    "(MQTT 3.1.1 [MQTT-1.5.3-1], 5.0 [MQTT-1.5.4-1])";
static const char MSG_SURROGATE[] =
    "Topic Names and Topic Filters must not encode U+D800..U+DFFF "
    "(MQTT 3.1.1 [MQTT-1.5.3-1], 5.0 [MQTT-1.5.4-1])";
static const char MSG_NULL[] =
    "Topic Names and Topic Filters must not include U+0000 "
    "(MQTT 3.1.1 and 5.0 [MQTT-4.7.3-2])";

static const char SHARE_PREFIX[] = "$share/";
#define SHARE_PREFIX_LEN (sizeof SHARE_PREFIX - 1)

static int fail(int code, const char *text, const char **msg)
{
    if (msg)
        *msg = text;
    return code;
}

static int has_byte(mq_view v, int c)
{
    return v.len > 0 && memchr(v.p, c, v.len) != NULL;
}

/* Length and UTF-8 rules shared by names and filters. */
static int check_common(mq_view t, int code, const char **msg)
{
    if (t.len == 0)
        return fail(code, MSG_EMPTY, msg);
    if (t.len > TOPIC_MAX)
        return fail(code, MSG_TOO_LONG, msg);
    int rc = mq_utf8_check(t.p, t.len, 0);
    if (rc == MQLITE_ERR_UTF8_NULL)
        return fail(rc, MSG_NULL, msg);
    if (rc == MQLITE_ERR_UTF8_SURROGATE)
        return fail(rc, MSG_SURROGATE, msg);
    if (rc)
        return fail(rc, MSG_UTF8, msg);
    return 0;
}

int mq_topic_check_name(mq_view t, const char **msg)
{
    int rc = check_common(t, MQLITE_ERR_TOPIC_NAME, msg);
    if (rc)
        return rc;
    if (has_byte(t, '+') || has_byte(t, '#'))
        return fail(MQLITE_ERR_TOPIC_NAME, MSG_NAME_WILDCARD, msg);
    return 0;
}

/* Wildcard placement in a (non-shared) filter. */
static int check_levels(mq_view f, const char **msg)
{
    for (uint32_t i = 0; i < f.len; i++) {
        uint8_t c = f.p[i];
        if (c != '+' && c != '#')
            continue;
        int starts = i == 0 || f.p[i - 1] == '/';
        int last = i + 1 == f.len;
        if (c == '#' && !(starts && last))
            return fail(MQLITE_ERR_TOPIC_FILTER, MSG_HASH, msg);
        if (c == '+' && !(starts && (last || f.p[i + 1] == '/')))
            return fail(MQLITE_ERR_TOPIC_FILTER, MSG_PLUS, msg);
    }
    return 0;
}

/* "$share/{ShareName}/{filter}" syntax, without the wildcard rules of
 * {filter}. Same returns as mq_topic_split_shared(). */
static int parse_shared(mq_view f, mq_view *group, mq_view *filter, const char **msg)
{
    if (f.len < SHARE_PREFIX_LEN || memcmp(f.p, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0) {
        *filter = f;
        return 0;
    }
    mq_view rest = mq_view_make(f.p + SHARE_PREFIX_LEN, f.len - SHARE_PREFIX_LEN);
    const uint8_t *slash = rest.len ? memchr(rest.p, '/', rest.len) : NULL;
    mq_view g = mq_view_make(rest.p, slash ? (size_t)(slash - rest.p) : rest.len);
    /* MQTT 5.0 [MQTT-4.8.2-1] */
    if (g.len == 0)
        return fail(MQLITE_ERR_TOPIC_FILTER, MSG_SHARE_EMPTY, msg);
    /* MQTT 5.0 [MQTT-4.8.2-2]; '/' ends the ShareName, so only '+' and '#'
     * can be inside it. */
    if (has_byte(g, '+') || has_byte(g, '#'))
        return fail(MQLITE_ERR_TOPIC_FILTER, MSG_SHARE_CHARS, msg);
    /* MQTT 5.0 [MQTT-4.8.2-2]: "/" and then a Topic Filter, which is at
     * least one character long ([MQTT-4.7.3-1]). */
    if (!slash || g.len + 1 == rest.len)
        return fail(MQLITE_ERR_TOPIC_FILTER, MSG_SHARE_FILTER, msg);
    *group = g;
    *filter = mq_view_make(slash + 1, rest.len - g.len - 1);
    return 1;
}

int mq_topic_check_filter(mq_view f, const char **msg)
{
    int rc = check_common(f, MQLITE_ERR_TOPIC_FILTER, msg);
    if (rc)
        return rc;
    mq_view group, filter;
    rc = parse_shared(f, &group, &filter, msg);
    if (rc < 0)
        return rc;
    return check_levels(filter, msg);
}

int mq_topic_check_filter_v(mq_view f, int version, const char **msg)
{
    int rc = mq_topic_check_filter(f, msg);
    /* Before 5.0 "$share/..." has no meaning of its own (3.1.1 4.7): a
     * filter that is not a well-formed shared one is an ordinary filter. */
    if (rc == MQLITE_ERR_TOPIC_FILTER && version < MQLITE_V5) {
        mq_view g, rest;
        if (parse_shared(f, &g, &rest, NULL) < 0)
            return check_levels(f, msg);
    }
    return rc;
}

int mq_topic_split_shared(mq_view f, mq_view *group, mq_view *filter)
{
    mq_view g, rest;
    int rc = parse_shared(f, &g, &rest, NULL);
    if (rc < 0)
        return rc;
    if (rc == 1 && check_levels(rest, NULL) != 0)
        return MQLITE_ERR_TOPIC_FILTER;
    if (rc == 1)
        *group = g;
    *filter = rest;
    return rc;
}

/* Advance *p over one literal level of both strings. 1 if the levels are
 * equal: both stop at a '/' or at their end. */
static int level_equal(const uint8_t **fp, const uint8_t *fe, const uint8_t **tp,
                       const uint8_t *te)
{
    const uint8_t *f = *fp, *t = *tp;
    while (f < fe && t < te && *f == *t && *f != '/') {
        f++;
        t++;
    }
    *fp = f;
    *tp = t;
    return (f == fe || *f == '/') && (t == te || *t == '/');
}

int mq_topic_match(mq_view filter, mq_view topic)
{
    const uint8_t *f = filter.p, *fe = f + filter.len;
    const uint8_t *t = topic.p, *te = t + topic.len;
    /* MQTT 3.1.1 and 5.0 [MQTT-4.7.2-1] */
    if (t < te && *t == '$' && f < fe && (*f == '+' || *f == '#'))
        return 0;
    for (;;) {
        if (f < fe && *f == '#')
            return 1;
        if (f < fe && *f == '+') {
            f++;
            while (t < te && *t != '/')
                t++;
        } else if (!level_equal(&f, fe, &t, te)) {
            return 0;
        }
        if (f == fe)
            return t == te;
        /* "x/#" also matches the parent level "x" (MQTT 5.0 4.7.1.2). */
        if (t == te)
            return fe - f == 2 && f[1] == '#';
        f++;
        t++;
    }
}

int mq_topic_has_wildcard(mq_view f)
{
    return has_byte(f, '+') || has_byte(f, '#');
}

/* ---- public API ---- */

MQLITE_API int32_t mqlite_topic_check_name(const char *topic, size_t len)
{
    if (!topic)
        return MQLITE_ERR_INVALID;
    /* Before mq_view_make(), whose length is 32 bits. */
    if (len > TOPIC_MAX)
        return MQLITE_ERR_TOPIC_NAME;
    return mq_topic_check_name(mq_view_make(topic, len), NULL);
}

MQLITE_API int32_t mqlite_topic_check_filter(const char *filter, size_t len)
{
    if (!filter)
        return MQLITE_ERR_INVALID;
    if (len > TOPIC_MAX)
        return MQLITE_ERR_TOPIC_FILTER;
    return mq_topic_check_filter(mq_view_make(filter, len), NULL);
}

MQLITE_API int32_t mqlite_topic_matches(const char *filter, const char *topic)
{
    if (!filter || !topic)
        return MQLITE_ERR_INVALID;
    size_t flen = strlen(filter), tlen = strlen(topic);
    int rc = mqlite_topic_check_filter(filter, flen);
    if (rc)
        return rc;
    rc = mqlite_topic_check_name(topic, tlen);
    if (rc)
        return rc;
    mq_view group, f;
    rc = mq_topic_split_shared(mq_view_make(filter, flen), &group, &f);
    if (rc < 0)
        return rc;
    return mq_topic_match(f, mq_view_make(topic, tlen));
}
