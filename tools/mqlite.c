/*
 * mqlite.c - the `mqlite` command: dispatch to a sub-command.
 */
#include <stdio.h>
#include <string.h>

#include "mqlite.h"
#include "tools.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"broker", cmd_broker, "run an MQTT broker (mosquitto-style config)"},
    {"pub", cmd_pub, "publish messages (mosquitto_pub-compatible flags)"},
    {"sub", cmd_sub, "subscribe and print messages (mosquitto_sub-compatible flags)"},
    {"decode", cmd_decode, "decode MQTT packets given in hex and print them"},
    {"passwd", cmd_passwd, "manage password files (mosquitto_passwd format) and SCRAM credentials"},
    {"spy", cmd_spy, "watch a broker (terminal UI, --plain, --json) or sniff (--proxy)"},
    {"bench", cmd_bench, "load-test a broker: pub, sub, pairs, fanin, fanout, conns"},
};

static void usage(FILE *out)
{
    const char *v;
    mqlite_version(&v);
    fprintf(out, "mqlite %s - MQTT 3.1/3.1.1/5.0 client and broker\n\n", v);
    fprintf(out, "usage: mqlite COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-8s %s\n", "help", "show this help");
    fprintf(out, "  %-8s %s\n", "version", "print the version");
    fprintf(out, "\nRun 'mqlite COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        const char *v;
        mqlite_version(&v);
        printf("mqlite %s\n", v);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "mqlite: unknown command '%s' (try 'mqlite help')\n", name);
    return 2;
}
