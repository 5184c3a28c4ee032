/*
 * test_topic.c - topic names, topic filters, shared subscriptions and
 * matching (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2).
 */
#include "testlib.h"

#include "topic.h"

#define NAME MQLITE_ERR_TOPIC_NAME
#define FILT MQLITE_ERR_TOPIC_FILTER

typedef struct vec {
    const char *s;
    int want;
} vec;

static mq_view V(const char *s)
{
    return mq_view_cstr(s);
}

static void names(const vec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *msg = NULL;
        int rc = mq_topic_check_name(V(v[i].s), &msg);
        if (rc != v[i].want)
            fprintf(stderr, "  name \"%s\": got %d, want %d\n", v[i].s, rc, v[i].want);
        CHECK_EQ(rc, v[i].want);
        CHECK(rc == 0 || msg != NULL);
        CHECK_EQ(mqlite_topic_check_name(v[i].s, strlen(v[i].s)), v[i].want);
    }
}

static void filters(const vec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *msg = NULL;
        int rc = mq_topic_check_filter(V(v[i].s), &msg);
        if (rc != v[i].want)
            fprintf(stderr, "  filter \"%s\": got %d, want %d\n", v[i].s, rc, v[i].want);
        CHECK_EQ(rc, v[i].want);
        CHECK(rc == 0 || msg != NULL);
        CHECK_EQ(mqlite_topic_check_filter(v[i].s, strlen(v[i].s)), v[i].want);
    }
}

/* Message of a failing check, "" when it passed. */
static const char *filter_msg(const char *f)
{
    const char *msg = "";
    mq_topic_check_filter(V(f), &msg);
    return msg;
}

static const char *name_msg(const char *t)
{
    const char *msg = "";
    mq_topic_check_name(V(t), &msg);
    return msg;
}

/* ---- topic names ---- */

static void test_topic_names_valid(void)
{
    static const vec v[] = {
        {"a", 0},
        {"/", 0},
        {"//", 0},
        {"sport/tennis/player1", 0},
        {"sport/tennis/player1/ranking", 0},
        {"/finance", 0},
        {"finance/", 0},
        {"$SYS/broker/load", 0},
        {"$SYS", 0},
        {"Accounts payable", 0}, /* MQTT 5.0 4.7.3: spaces are allowed */
        {" ", 0},
        {"caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80", 0},
        {"\xef\xbb\xbf" "a", 0},        /* MQTT 5.0 [MQTT-1.5.4-3]: U+FEFF is kept */
        {"a\tb", 0},                    /* controls only fail the strict check */
        {"$share/g/x", 0},             /* not a filter, so not a share */
    };
    names(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-4.7.0-1], 3.1.1 [MQTT-4.7.1-1]: no wildcards in names. */
static void test_topic_name_with_wildcard_is_invalid(void)
{
    static const vec v[] = {
        {"+", NAME}, {"#", NAME}, {"a/+", NAME}, {"a/#", NAME}, {"+/a", NAME},
        {"sport+", NAME}, {"a#b", NAME}, {"a/b/c#", NAME}, {"$SYS/#", NAME},
    };
    names(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(name_msg("a/+"), "5.0 [MQTT-4.7.0-1]") != NULL);
    CHECK(strstr(name_msg("a/#"), "3.1.1 [MQTT-4.7.1-1]") != NULL);
}

/* MQTT 5.0 and 3.1.1 [MQTT-4.7.3-1]: at least one character long. */
static void test_empty_topic_name_is_invalid(void)
{
    static const vec v[] = {{"", NAME}};
    names(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(name_msg(""), "[MQTT-4.7.3-1]") != NULL);
}

/* MQTT 5.0 and 3.1.1 [MQTT-4.7.3-2]: no U+0000 in names or filters. */
static void test_null_character_in_topic_is_invalid(void)
{
    const char *msg = NULL;
    CHECK_EQ(mq_topic_check_name(mq_view_make("a\0b", 3), &msg), MQLITE_ERR_UTF8_NULL);
    CHECK(msg && strstr(msg, "[MQTT-4.7.3-2]") != NULL);
    CHECK_EQ(mq_topic_check_filter(mq_view_make("a/\0", 3), NULL), MQLITE_ERR_UTF8_NULL);
    CHECK_EQ(mqlite_topic_check_name("\0", 1), MQLITE_ERR_UTF8_NULL);
    CHECK_EQ(mqlite_topic_check_filter("#\0", 2), MQLITE_ERR_UTF8_NULL);
}

/* MQTT 5.0 [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: topics are UTF-8 Encoded
 * Strings, so ill-formed UTF-8 and surrogates are refused. */
static void test_ill_formed_utf8_topic_is_invalid(void)
{
    static const vec v[] = {
        {"a/\xc0\xaf", MQLITE_ERR_UTF8},
        {"\xff", MQLITE_ERR_UTF8},
        {"a\xe2\x82", MQLITE_ERR_UTF8},
        {"\xed\xa0\x80", MQLITE_ERR_UTF8_SURROGATE},
    };
    names(v, MQ_ARRAY_LEN(v));
    filters(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(name_msg("\xff"), "5.0 [MQTT-1.5.4-1]") != NULL);
    CHECK(strstr(name_msg("\xed\xa0\x80"), "U+D800") != NULL);
}

/* MQTT 5.0 and 3.1.1 [MQTT-4.7.3-3]: at most 65535 bytes. */
static void test_topic_longer_than_65535_bytes_is_invalid(void)
{
    static char big[65537];
    memset(big, 'a', sizeof big);
    CHECK_EQ(mq_topic_check_name(mq_view_make(big, 65535), NULL), 0);
    CHECK_EQ(mq_topic_check_filter(mq_view_make(big, 65535), NULL), 0);
    CHECK_EQ(mq_topic_check_name(mq_view_make(big, 65536), NULL), NAME);
    CHECK_EQ(mq_topic_check_filter(mq_view_make(big, 65536), NULL), FILT);
    big[65534] = '#';
    CHECK_EQ(mq_topic_check_filter(mq_view_make(big, 65535), NULL), FILT);
    big[65533] = '/';
    CHECK_EQ(mq_topic_check_filter(mq_view_make(big, 65535), NULL), 0);
    CHECK_EQ(mqlite_topic_check_name(big, 65536), NAME);
    CHECK_EQ(mqlite_topic_check_filter(big, 65536), FILT);
    const char *msg = NULL;
    mq_topic_check_name(mq_view_make(big, 65536), &msg);
    CHECK(msg && strstr(msg, "[MQTT-4.7.3-3]") != NULL);
}

/* A size_t length must not be cut to 32 bits: 2^32 + 1 is not 1. */
static void test_public_check_rejects_huge_length_without_reading(void)
{
    size_t huge = (size_t)-1;
    CHECK_EQ(mqlite_topic_check_name("a", huge), NAME);
    CHECK_EQ(mqlite_topic_check_filter("a", huge), FILT);
#if SIZE_MAX > UINT32_MAX
    CHECK_EQ(mqlite_topic_check_name("a", (size_t)UINT32_MAX + 2), NAME);
#endif
}

static void test_public_check_rejects_null(void)
{
    CHECK_EQ(mqlite_topic_check_name(NULL, 0), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_topic_check_filter(NULL, 3), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_topic_matches(NULL, "a"), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_topic_matches("a", NULL), MQLITE_ERR_INVALID);
}

/* Lengths are honoured: the bytes after them are not part of the topic. */
static void test_public_check_reads_only_len_bytes(void)
{
    CHECK_EQ(mqlite_topic_check_name("a/b#", 3), 0);
    CHECK_EQ(mqlite_topic_check_filter("a/+x", 3), 0);
    CHECK_EQ(mqlite_topic_check_name("a/b", 0), NAME);
    CHECK_EQ(mqlite_topic_check_filter("a/b", 0), FILT);
}

/* ---- topic filters ---- */

/* MQTT 5.0 4.7.1, 3.1.1 4.7.1: the spec's examples of valid filters. */
static void test_topic_filters_valid(void)
{
    static const vec v[] = {
        {"#", 0},
        {"+", 0},
        {"sport/#", 0},
        {"sport/tennis/#", 0},
        {"sport/tennis/player1/#", 0},
        {"sport/tennis/+", 0},
        {"sport/+/player1", 0},
        {"+/tennis/#", 0},
        {"+/+", 0},
        {"/+", 0},
        {"+/", 0},
        {"/#", 0},
        {"/", 0},
        {"//", 0},
        {"a//b", 0},
        {"a/+/+/#", 0},
        {"+/+/+", 0},
        {"$SYS/#", 0},
        {"$SYS/monitor/+", 0},
        {"sport/tennis/player1", 0},
        {"$share", 0},    /* no "$share/" prefix: an ordinary filter */
        {"$sharex/a", 0}, /* likewise */
        {"$SHARE/g", 0},  /* the prefix is case-sensitive */
        {"a\xc3\xa9/+/\xf0\x9f\x98\x80", 0},
    };
    filters(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-4.7.1-1], 3.1.1 [MQTT-4.7.1-2]: '#' on its own or after
 * '/', and the last character. */
static void test_multi_level_wildcard_must_be_last_whole_level(void)
{
    static const vec v[] = {
        {"sport/tennis#", FILT},
        {"sport/tennis/#/ranking", FILT},
        {"#/", FILT},
        {"#/a", FILT},
        {"a#", FILT},
        {"#a", FILT},
        {"a/#b", FILT},
        {"a/b#/c", FILT},
        {"##", FILT},
        {"#/#", FILT},
        {"+#", FILT},
        {"#+", FILT},
        {"/##", FILT},
    };
    filters(v, MQ_ARRAY_LEN(v));
    const char *m = filter_msg("sport/tennis#");
    CHECK(strstr(m, "'#'") != NULL);
    CHECK(strstr(m, "5.0 [MQTT-4.7.1-1]") != NULL);
    CHECK(strstr(m, "3.1.1 [MQTT-4.7.1-2]") != NULL);
}

/* MQTT 5.0 [MQTT-4.7.1-2], 3.1.1 [MQTT-4.7.1-3]: '+' fills a whole level. */
static void test_single_level_wildcard_must_fill_a_level(void)
{
    static const vec v[] = {
        {"sport+", FILT},
        {"+a", FILT},
        {"a+", FILT},
        {"a/+b/c", FILT},
        {"a/b+/c", FILT},
        {"++", FILT},
        {"+/++", FILT},
        {"a/+x", FILT},
        {"x+/", FILT},
    };
    filters(v, MQ_ARRAY_LEN(v));
    const char *m = filter_msg("sport+");
    CHECK(strstr(m, "'+'") != NULL);
    CHECK(strstr(m, "5.0 [MQTT-4.7.1-2]") != NULL);
    CHECK(strstr(m, "3.1.1 [MQTT-4.7.1-3]") != NULL);
}

/* MQTT 5.0 and 3.1.1 [MQTT-4.7.3-1] */
static void test_empty_topic_filter_is_invalid(void)
{
    static const vec v[] = {{"", FILT}};
    filters(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(filter_msg(""), "[MQTT-4.7.3-1]") != NULL);
}

/* ---- shared subscriptions ---- */

/* MQTT 5.0 [MQTT-4.8.2-1], [MQTT-4.8.2-2]: "$share/{ShareName}/{filter}". */
static void test_shared_filters_valid(void)
{
    static const vec v[] = {
        {"$share/g/#", 0},
        {"$share/g/+", 0},
        {"$share/g/a/+", 0},
        {"$share/consumer1/sport/tennis/+", 0},
        {"$share/g//", 0},
        {"$share/g/a", 0},
        {"$share/$g/$SYS/#", 0},
        {"$share/g/$share/h/x", 0},
        {"$share/\xc3\xa9t\xc3\xa9/x", 0},
    };
    filters(v, MQ_ARRAY_LEN(v));
}

/* MQTT 5.0 [MQTT-4.8.2-1]: the ShareName is at least one character long. */
static void test_shared_filter_with_empty_share_name_is_invalid(void)
{
    static const vec v[] = {{"$share/", FILT}, {"$share//a", FILT}, {"$share//", FILT}};
    filters(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(filter_msg("$share//a"), "5.0 [MQTT-4.8.2-1]") != NULL);
}

/* MQTT 5.0 [MQTT-4.8.2-2]: the ShareName has no '+' or '#'. */
static void test_shared_filter_with_wildcard_in_share_name_is_invalid(void)
{
    static const vec v[] = {
        {"$share/g+/a", FILT}, {"$share/+/a", FILT}, {"$share/g#/a", FILT},
        {"$share/#", FILT},    {"$share/+", FILT},   {"$share/a#b/c", FILT},
    };
    filters(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(filter_msg("$share/+/a"), "5.0 [MQTT-4.8.2-2]") != NULL);
}

/* MQTT 5.0 [MQTT-4.8.2-2]: the ShareName is followed by '/' and a Topic
 * Filter; "$share/..." that does not parse is invalid, not an ordinary
 * filter. */
static void test_shared_filter_without_topic_filter_is_invalid(void)
{
    static const vec v[] = {{"$share/g", FILT}, {"$share/g/", FILT}, {"$share/group", FILT}};
    filters(v, MQ_ARRAY_LEN(v));
    CHECK(strstr(filter_msg("$share/g"), "5.0 [MQTT-4.8.2-2]") != NULL);
}

/* MQTT 5.0 [MQTT-4.7.1-1], [MQTT-4.7.1-2]: the filter after the ShareName
 * obeys the wildcard rules. */
static void test_shared_filter_part_obeys_wildcard_rules(void)
{
    static const vec v[] = {
        {"$share/g/a#", FILT}, {"$share/g/#/a", FILT}, {"$share/g/a+", FILT}, {"$share/g/+x/y", FILT},
    };
    filters(v, MQ_ARRAY_LEN(v));
}

static void test_split_shared_gives_group_and_filter(void)
{
    mq_view g = {NULL, 0}, f = {NULL, 0};
    CHECK_EQ(mq_topic_split_shared(V("$share/consumer1/sport/tennis/+"), &g, &f), 1);
    CHECK_MEM(g.p, g.len, "consumer1", 9);
    CHECK_MEM(f.p, f.len, "sport/tennis/+", 14);
    CHECK_EQ(mq_topic_split_shared(V("$share/g//"), &g, &f), 1);
    CHECK_MEM(g.p, g.len, "g", 1);
    CHECK_MEM(f.p, f.len, "/", 1);
}

static void test_split_shared_passes_ordinary_filter_through(void)
{
    static const char *const plain[] = {"sport/#", "$share", "$SHARE/g/x", "$shar/g/x", "#"};
    for (size_t i = 0; i < MQ_ARRAY_LEN(plain); i++) {
        mq_view g = {NULL, 0}, f = {NULL, 0};
        CHECK_EQ(mq_topic_split_shared(V(plain[i]), &g, &f), 0);
        CHECK_MEM(f.p, f.len, plain[i], strlen(plain[i]));
    }
}

/* MQTT 5.0 [MQTT-4.8.2-1], [MQTT-4.8.2-2] */
static void test_split_shared_rejects_malformed_share(void)
{
    static const char *const bad[] = {"$share/", "$share//a", "$share/g", "$share/g/",
                                      "$share/g+/a", "$share/g/a#"};
    for (size_t i = 0; i < MQ_ARRAY_LEN(bad); i++) {
        mq_view g, f;
        CHECK_EQ(mq_topic_split_shared(V(bad[i]), &g, &f), FILT);
    }
}

static void test_has_wildcard(void)
{
    CHECK_EQ(mq_topic_has_wildcard(V("a/+/b")), 1);
    CHECK_EQ(mq_topic_has_wildcard(V("#")), 1);
    CHECK_EQ(mq_topic_has_wildcard(V("a/b")), 0);
    CHECK_EQ(mq_topic_has_wildcard(V("")), 0);
    CHECK_EQ(mq_topic_has_wildcard(mq_view_make("a/#", 2)), 0);
}

/* ---- matching ---- */

typedef struct match {
    const char *filter, *topic;
    int want;
} match;

static void matches(const match *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = mq_topic_match(V(m[i].filter), V(m[i].topic));
        int pub = mqlite_topic_matches(m[i].filter, m[i].topic);
        if (rc != m[i].want || pub != m[i].want)
            fprintf(stderr, "  \"%s\" vs \"%s\": got %d/%d, want %d\n", m[i].filter,
                    m[i].topic, rc, pub, m[i].want);
        CHECK_EQ(rc, m[i].want);
        CHECK_EQ(pub, m[i].want);
    }
}

/* MQTT 5.0 4.7.1.2 (3.1.1 4.7.1.2): '#' matches the parent and any number
 * of child levels. */
static void test_match_multi_level_wildcard(void)
{
    static const match m[] = {
        {"sport/tennis/player1/#", "sport/tennis/player1", 1},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", 1},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1},
        {"sport/tennis/player1/#", "sport/tennis/player2", 0},
        {"sport/tennis/player1/#", "sport/tennis", 0},
        {"sport/tennis/player1/#", "sport/tennis/player10", 0},
        {"sport/#", "sport", 1},
        {"sport/#", "sport/", 1},
        {"sport/#", "sports", 0},
        {"sport/#", "/sport", 0},
        {"#", "sport/tennis/player1", 1},
        {"#", "/", 1},
        {"#", "a", 1},
        {"/#", "/", 1},
        {"/#", "/finance", 1},
        {"/#", "finance", 0},
        {"a/+/#", "a/b", 1},
        {"a/+/#", "a/", 1},
        {"a/+/#", "a", 0},
    };
    matches(m, MQ_ARRAY_LEN(m));
}

/* MQTT 5.0 4.7.1.3 (3.1.1 4.7.1.3): '+' matches exactly one level, which
 * may be empty. */
static void test_match_single_level_wildcard(void)
{
    static const match m[] = {
        {"sport/tennis/+", "sport/tennis/player1", 1},
        {"sport/tennis/+", "sport/tennis/player2", 1},
        {"sport/tennis/+", "sport/tennis/player1/ranking", 0},
        {"sport/tennis/+", "sport/tennis", 0},
        {"sport/+", "sport", 0},
        {"sport/+", "sport/", 1},
        {"sport/+/player1", "sport/tennis/player1", 1},
        {"sport/+/player1", "sport//player1", 1},
        {"sport/+/player1", "sport/tennis/player2", 0},
        {"+/+", "/finance", 1},
        {"/+", "/finance", 1},
        {"+", "/finance", 0},
        {"+/+", "/", 1},
        {"+", "finance", 1},
        {"+", "/", 0},
        {"+/tennis/#", "sport/tennis/player1", 1},
        {"+/tennis/#", "sport/tennis", 1},
        {"+/tennis/#", "sport/golf", 0},
        {"+/+/+", "a/b/c", 1},
        {"+/+/+", "a/b", 0},
        {"+/+/+", "a/b/c/d", 0},
        {"+/", "a/", 1},
        {"+/", "a", 0},
        {"a/+/c", "a//c", 1},
    };
    matches(m, MQ_ARRAY_LEN(m));
}

/* MQTT 5.0 and 3.1.1 [MQTT-4.7.3-4]: no normalization; levels compare
 * byte for byte, case and empty levels included. */
static void test_match_literal_levels_exactly(void)
{
    static const match m[] = {
        {"ACCOUNTS", "Accounts", 0},
        {"Accounts payable", "Accounts payable", 1},
        {"/finance", "finance", 0},
        {"finance", "/finance", 0},
        {"a/b", "a/b", 1},
        {"a/b", "a/b/", 0},
        {"a/b/", "a/b", 0},
        {"a//b", "a/b", 0},
        {"a/b", "a/bc", 0},
        {"a/bc", "a/b", 0},
        {"caf\xc3\xa9", "cafe\xcc\x81", 0}, /* NFC vs NFD */
        {"\xef\xbb\xbf" "a", "a", 0},       /* MQTT 5.0 [MQTT-1.5.4-3] */
    };
    matches(m, MQ_ARRAY_LEN(m));
}

/* MQTT 5.0 and 3.1.1 [MQTT-4.7.2-1]: filters starting with a wildcard do not
 * match names starting with '$'. */
static void test_match_wildcard_first_level_skips_dollar_topics(void)
{
    static const match m[] = {
        {"#", "$SYS/monitor/Clients", 0},
        {"+/monitor/Clients", "$SYS/monitor/Clients", 0},
        {"$SYS/#", "$SYS/monitor/Clients", 1},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", 1},
        {"$SYS/#", "$SYS", 1},
        {"#", "$", 0},
        {"+", "$SYS", 0},
        {"+/#", "$SYS/x", 0},
        {"a/#", "a/$SYS", 1},
        {"a/+", "a/$x", 1},
        {"/+", "/$SYS", 1},
        {"#", "/$SYS", 1},
        {"$SYS", "$SYS", 1},
    };
    matches(m, MQ_ARRAY_LEN(m));
}

/* MQTT 5.0 4.8.2: a shared subscription matches through its filter part
 * (mq_topic_match() takes the part only; the public call splits it). */
static void test_match_shared_filter_by_its_filter_part(void)
{
    static const match m[] = {
        {"$share/g/sport/#", "sport/tennis", 1},
        {"$share/g/+", "g", 1},
        {"$share/g/a", "$share/g/a", 0},
        {"$share/g/#", "$SYS/x", 0}, /* MQTT 5.0 [MQTT-4.7.2-1] */
        {"$share/g/$SYS/#", "$SYS/x", 1},
    };
    for (size_t i = 0; i < MQ_ARRAY_LEN(m); i++) {
        int rc = mqlite_topic_matches(m[i].filter, m[i].topic);
        if (rc != m[i].want)
            fprintf(stderr, "  \"%s\" vs \"%s\": got %d\n", m[i].filter, m[i].topic, rc);
        CHECK_EQ(rc, m[i].want);
    }
}

/* Views are not NUL-terminated: matching stops at their lengths. */
static void test_match_respects_view_lengths(void)
{
    CHECK_EQ(mq_topic_match(mq_view_make("a/bc", 3), mq_view_make("a/bx", 3)), 1);
    CHECK_EQ(mq_topic_match(mq_view_make("a/+x", 3), mq_view_make("a/b/c", 3)), 1);
    CHECK_EQ(mq_topic_match(mq_view_make("a/#", 1), mq_view_make("a/b", 3)), 0);
}

static void test_matches_reports_invalid_input(void)
{
    CHECK_EQ(mqlite_topic_matches("a/#/b", "a/x/b"), FILT);
    CHECK_EQ(mqlite_topic_matches("$share/g", "g"), FILT);
    CHECK_EQ(mqlite_topic_matches("", "a"), FILT);
    CHECK_EQ(mqlite_topic_matches("#", "a/+"), NAME);
    CHECK_EQ(mqlite_topic_matches("#", ""), NAME);
    CHECK_EQ(mqlite_topic_matches("#", "\xc0\x80"), MQLITE_ERR_UTF8);
}

/* A long topic against a deep filter: single pass, no allocation. */
static void test_match_long_topics(void)
{
    static char topic[65536], filter[65536];
    size_t n = 0;
    while (n + 2 < sizeof topic - 1) {
        topic[n] = 'x';
        filter[n] = '+';
        topic[n + 1] = filter[n + 1] = '/';
        n += 2;
    }
    topic[n] = 'x';
    filter[n] = '#';
    n++;
    CHECK_EQ(mq_topic_check_filter(mq_view_make(filter, n), NULL), 0);
    CHECK_EQ(mq_topic_check_name(mq_view_make(topic, n), NULL), 0);
    CHECK_EQ(mq_topic_match(mq_view_make(filter, n), mq_view_make(topic, n)), 1);
    filter[n - 1] = '+';
    CHECK_EQ(mq_topic_match(mq_view_make(filter, n), mq_view_make(topic, n)), 1);
    CHECK_EQ(mq_topic_match(mq_view_make(filter, n - 2), mq_view_make(topic, n)), 0);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_topic_names_valid);
    RUN(test_topic_name_with_wildcard_is_invalid);
    RUN(test_empty_topic_name_is_invalid);
    RUN(test_null_character_in_topic_is_invalid);
    RUN(test_ill_formed_utf8_topic_is_invalid);
    RUN(test_topic_longer_than_65535_bytes_is_invalid);
    RUN(test_public_check_rejects_huge_length_without_reading);
    RUN(test_public_check_rejects_null);
    RUN(test_public_check_reads_only_len_bytes);
    RUN(test_topic_filters_valid);
    RUN(test_multi_level_wildcard_must_be_last_whole_level);
    RUN(test_single_level_wildcard_must_fill_a_level);
    RUN(test_empty_topic_filter_is_invalid);
    RUN(test_shared_filters_valid);
    RUN(test_shared_filter_with_empty_share_name_is_invalid);
    RUN(test_shared_filter_with_wildcard_in_share_name_is_invalid);
    RUN(test_shared_filter_without_topic_filter_is_invalid);
    RUN(test_shared_filter_part_obeys_wildcard_rules);
    RUN(test_split_shared_gives_group_and_filter);
    RUN(test_split_shared_passes_ordinary_filter_through);
    RUN(test_split_shared_rejects_malformed_share);
    RUN(test_has_wildcard);
    RUN(test_match_multi_level_wildcard);
    RUN(test_match_single_level_wildcard);
    RUN(test_match_literal_levels_exactly);
    RUN(test_match_wildcard_first_level_skips_dollar_topics);
    RUN(test_match_shared_filter_by_its_filter_part);
    RUN(test_match_respects_view_lengths);
    RUN(test_matches_reports_invalid_input);
    RUN(test_match_long_topics);
    TEST_MAIN_END();
}
