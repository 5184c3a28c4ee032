/*
 * cmd_passwd.c - `mqlite passwd`: create and update password files in the
 * format of mosquitto_passwd (so that mosquitto reads what this writes, and
 * the mqlite broker reads what mosquitto_passwd writes), and mqlite's SCRAM
 * credential files (--scram). Same options as mosquitto_passwd:
 *
 *   mqlite passwd [-H HASH] [-I N] [--scram] [-c | -D] FILE USER
 *   mqlite passwd [-H HASH] [-I N] [--scram] [-c] -b FILE USER PASSWORD
 *   mqlite passwd -U FILE
 *
 * Without -b the password is read from the terminal without echo (twice),
 * or, when standard input is not a terminal, as one line from it. Files
 * are replaced atomically (a temporary file renamed over them); a new file
 * gets mode 0600, an updated one keeps its mode.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "broker/passwd.h"
#include "tools.h"

#define PW_MAX 1024

typedef struct pargs {
    int create, del, batch, upgrade, scram;
    int kind;
    unsigned long iterations;
    const char *file, *user, *password;
} pargs;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mqlite passwd [-H HASH] [-I N] [--scram] [-c | -D] FILE USER\n"
            "       mqlite passwd [-H HASH] [-I N] [--scram] [-c] -b FILE USER PASSWORD\n"
            "       mqlite passwd -U FILE\n"
            "\n"
            "Manage a password file in mosquitto_passwd's format (read by mqlite broker\n"
            "and by mosquitto), or with --scram a SCRAM-SHA-256 credential file for MQTT 5\n"
            "enhanced authentication (scram_file in the broker's configuration).\n"
            "\n"
            "  -b          batch mode: the password is the last argument (visible to\n"
            "              other users in the process list: use with care)\n"
            "  -c          create the file (an existing one is overwritten)\n"
            "  -D          delete USER from the file\n"
            "  -H HASH     sha512-pbkdf2 (default, mosquitto 2) or sha512 (mosquitto 1.x)\n"
            "  -I N        PBKDF2 iterations (default 101 as mosquitto_passwd; 4096 with\n"
            "              --scram). The broker computes one hash per login in its loop:\n"
            "              thousands of iterations cost milliseconds per CONNECT\n"
            "  -U          hash the plain-text passwords of FILE (\"user:password\" lines);\n"
            "              lines already hashed ($6$, $7$) are kept\n"
            "      --scram SCRAM-SHA-256 credentials instead of a password hash\n"
            "  -h, --help  this help\n"
            "\n"
            "Without -b the password is asked for twice without echo (or read as one\n"
            "line from standard input when it is not a terminal).\n");
}

static int parse(int argc, char **argv, pargs *a)
{
    memset(a, 0, sizeof *a);
    a->kind = MQ_PW_PBKDF2;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(o, "-c")) {
            a->create = 1;
        } else if (!strcmp(o, "-D")) {
            a->del = 1;
        } else if (!strcmp(o, "-b")) {
            a->batch = 1;
        } else if (!strcmp(o, "-U")) {
            a->upgrade = 1;
        } else if (!strcmp(o, "--scram")) {
            a->scram = 1;
        } else if (!strcmp(o, "-H") && i + 1 < argc) {
            const char *h = argv[++i];
            if (!strcmp(h, "sha512-pbkdf2")) {
                a->kind = MQ_PW_PBKDF2;
            } else if (!strcmp(h, "sha512")) {
                a->kind = MQ_PW_SHA512;
            } else {
                fprintf(stderr, "mqlite passwd: unknown hash \"%s\" (sha512-pbkdf2 or sha512)\n",
                        h);
                return 2;
            }
        } else if (!strcmp(o, "-I") && i + 1 < argc) {
            char *end;
            errno = 0;
            a->iterations = strtoul(argv[++i], &end, 10);
            if (errno || *end || a->iterations < 1 || a->iterations > 100000000ul) {
                fprintf(stderr, "mqlite passwd: -I needs a number of iterations 1..100000000\n");
                return 2;
            }
        } else {
            fprintf(stderr, "mqlite passwd: unknown or incomplete option \"%s\"\n", o);
            usage(stderr);
            return 2;
        }
    }
    if (a->scram)
        a->kind = MQ_PW_SCRAM_SHA256;
    int need = a->upgrade ? 1 : a->batch ? 3 : 2;
    if ((a->create && a->del) || (a->upgrade && (a->create || a->del || a->batch || a->scram)) ||
        (a->del && a->batch) || argc - i != need) {
        usage(stderr);
        return 2;
    }
    a->file = argv[i];
    a->user = a->upgrade ? NULL : argv[i + 1];
    a->password = a->batch ? argv[i + 2] : NULL;
    if (a->user && (!a->user[0] || strpbrk(a->user, ":\r\n"))) {
        fprintf(stderr, "mqlite passwd: user names must not be empty or contain ':'\n");
        return 2;
    }
    return 0;
}

/* Read one line (no newline kept) from f. 0 or -1. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return -1;
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (n == cap - 1)
        return -1; /* too long */
    if (n && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return 0;
}

static int prompt(FILE *tty, const char *what, char *buf, size_t cap)
{
    struct termios old, quiet;
    int fd = fileno(tty);
    fprintf(stderr, "%s", what);
    fflush(stderr);
    int echo_off = tcgetattr(fd, &old) == 0;
    if (echo_off) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    int rc = read_line(tty, buf, cap);
    if (echo_off)
        tcsetattr(fd, TCSAFLUSH, &old);
    fprintf(stderr, "\n");
    return rc;
}

static int get_password(char *pw, size_t cap)
{
    if (!isatty(STDIN_FILENO)) {
        if (read_line(stdin, pw, cap)) {
            fprintf(stderr, "mqlite passwd: no password on standard input\n");
            return -1;
        }
        return 0;
    }
    char again[PW_MAX];
    if (prompt(stdin, "Password: ", pw, cap) || prompt(stdin, "Reenter password: ", again,
                                                       sizeof again)) {
        fprintf(stderr, "mqlite passwd: could not read the password\n");
        return -1;
    }
    int same = strcmp(pw, again) == 0;
    memset(again, 0, sizeof again);
    if (!same) {
        fprintf(stderr, "mqlite passwd: passwords do not match\n");
        return -1;
    }
    return 0;
}

static int make_line(const pargs *a, const char *user, const char *pw, char *line, size_t cap)
{
    int rc = mq_pw_make_line(line, cap, user, pw, strlen(pw), a->kind, (uint32_t)a->iterations);
    if (rc) {
        fprintf(stderr, "mqlite passwd: cannot hash the password for \"%s\": %s\n", user,
                mqlite_strerror(rc));
        return -1;
    }
    return 0;
}

/* The user name of a file line (up to ':'), or 0 when the line has none. */
static size_t line_user(const char *line)
{
    if (line[0] == '#')
        return 0;
    const char *c = strchr(line, ':');
    return c ? (size_t)(c - line) : 0;
}

static int is_hashed(const char *line)
{
    const char *h = strchr(line, ':');
    return h && (!strncmp(h + 1, "$6$", 3) || !strncmp(h + 1, "$7$", 3) ||
                 !strncmp(h + 1, "SCRAM-SHA-256$", 14));
}

/* Copy `in` (may be NULL) to `out` with the change applied. */
static int rewrite(const pargs *a, FILE *in, FILE *out, const char *newline, int *found)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    size_t ulen = a->user ? strlen(a->user) : 0;
    while (in && !rc && (n = getline(&line, &cap, in)) >= 0) {
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        size_t u = line_user(line);
        if (a->upgrade && u && !is_hashed(line)) {
            char user[512], hashed[MQ_PW_LINE_MAX];
            if (u >= sizeof user) {
                rc = -1;
                break;
            }
            memcpy(user, line, u);
            user[u] = '\0';
            rc = make_line(a, user, line + u + 1, hashed, sizeof hashed);
            if (!rc)
                fprintf(out, "%s\n", hashed);
            memset(line, 0, (size_t)n);
            continue;
        }
        if (!a->upgrade && u == ulen && !strncmp(line, a->user, ulen)) {
            if (!*found && newline)
                fprintf(out, "%s\n", newline);
            *found = 1;
            continue;
        }
        fprintf(out, "%s\n", line);
    }
    free(line);
    if (!rc && newline && !*found)
        fprintf(out, "%s\n", newline);
    return rc;
}

/* Write the new contents next to the file, then rename over it. */
static int update_file(const pargs *a, const char *newline)
{
    FILE *in = NULL;
    struct stat st;
    mode_t mode = 0600;
    if (!a->create) {
        in = fopen(a->file, "r");
        if (!in) {
            fprintf(stderr, "mqlite passwd: %s: %s%s\n", a->file, strerror(errno),
                    errno == ENOENT ? " (use -c to create it)" : "");
            return 1;
        }
        if (fstat(fileno(in), &st) == 0)
            mode = st.st_mode & 07777;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", a->file);
    int fd = mkstemp(tmp);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        fprintf(stderr, "mqlite passwd: cannot write next to %s: %s\n", a->file, strerror(errno));
        if (fd >= 0)
            close(fd);
        if (in)
            fclose(in);
        return 1;
    }
    fchmod(fd, mode);
    int found = 0;
    int rc = rewrite(a, in, out, newline, &found);
    if (in)
        fclose(in);
    if (fflush(out) != 0 || fsync(fd) != 0)
        rc = -1;
    if (fclose(out) != 0)
        rc = -1;
    if (!rc && a->del && !found) {
        fprintf(stderr, "mqlite passwd: user \"%s\" not in %s\n", a->user, a->file);
        rc = -1;
    }
    if (rc || rename(tmp, a->file) != 0) {
        if (!rc)
            fprintf(stderr, "mqlite passwd: %s: %s\n", a->file, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

int cmd_passwd(int argc, char **argv)
{
    pargs a;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : rc;
    char pw[PW_MAX] = "", line[MQ_PW_LINE_MAX] = "";
    const char *newline = NULL;
    if (!a.upgrade && !a.del) {
        if (a.password) {
            if (strlen(a.password) >= sizeof pw) {
                fprintf(stderr, "mqlite passwd: password too long\n");
                return 1;
            }
            memcpy(pw, a.password, strlen(a.password) + 1);
        } else if (get_password(pw, sizeof pw)) {
            return 1;
        }
        if (make_line(&a, a.user, pw, line, sizeof line))
            return 1;
        newline = line;
    }
    rc = update_file(&a, newline);
    memset(pw, 0, sizeof pw);
    memset(line, 0, sizeof line);
    return rc;
}
