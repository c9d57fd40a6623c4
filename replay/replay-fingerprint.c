/*
 * qrr: the machine fingerprint stored in a log's header
 *
 * Copyright (c) 2026 The qrr authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A replay is only meaningful on the machine it was recorded on.  The
 * fingerprint is text, one "key=value" line each:
 *
 *   format=qrr-fingerprint-2   (1: without append, kernel and initrd)
 *   qemu=VERSION            QEMU version (a mismatch is only a warning)
 *   target=NAME             target architecture
 *   machine=NAME            machine type
 *   cpu=TYPE                CPU type
 *   smp=N                   vCPUs
 *   ram=BYTES               RAM size
 *   icount=SHIFT            -icount shift= as given
 *   sync=N                  interrupts/exceptions between CPU state sync
 *                           points (rrsync=; replay takes it from the log)
 *   chaos=SEED              record only, with rrchaos=: the seed of the
 *                           vCPU schedule's chaos mode (replay-sched.c);
 *                           not compared, a replay follows the log
 *   device=PATH TYPE        one line per device, sorted
 *   append=TEXT             -append (the kernel command line)
 *   kernel=SHA256           digest of the -kernel file's content
 *   initrd=SHA256           digest of the -initrd file's content
 *
 * Replay recomputes it and rejects a log whose fingerprint differs, naming
 * the first difference.  append, kernel and initrd came with format 2
 * (each absent when not given): a log of format 1 replays without their
 * check.
 * Contents, not paths: a trace replays on another machine, where the
 * files lie elsewhere.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "hw/boards.h"
#include "hw/qdev-core.h"
#include "hw/core/cpu.h"
#include "replay-core.h"

static int collect_device(Object *obj, void *opaque)
{
    GPtrArray *lines = opaque;
    g_autofree char *path = NULL;

    if (object_dynamic_cast(obj, TYPE_DEVICE)) {
        path = object_get_canonical_path(obj);
        g_ptr_array_add(lines, g_strdup_printf("device=%s %s", path,
                                               object_get_typename(obj)));
    }
    return 0;
}

static gint compare_lines(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "KEY=sha256 of @path's content\n" into @s; a file unreadable: say so */
static void append_file_digest(GString *s, const char *key, const char *path)
{
    g_autofree char *data = NULL;
    g_autofree char *sum = NULL;
    gsize len;

    if (!path) {
        return;
    }
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        g_string_append_printf(s, "%s=unreadable\n", key);
        return;
    }
    sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
    g_string_append_printf(s, "%s=%s\n", key, sum);
}

char *replay_fingerprint(void)
{
    MachineState *ms = current_machine;
    g_autoptr(GPtrArray) dev = g_ptr_array_new_with_free_func(g_free);
    GString *s = g_string_new("format=qrr-fingerprint-2\n");
    uint64_t seed;
    guint i;

    g_string_append_printf(s, "qemu=%s\n", QEMU_VERSION);
    g_string_append_printf(s, "target=%s\n", target_name());
    g_string_append_printf(s, "machine=%s\n", MACHINE_GET_CLASS(ms)->name);
    g_string_append_printf(s, "cpu=%s\n", ms->cpu_type ? ms->cpu_type : "");
    g_string_append_printf(s, "smp=%u\n", ms->smp.cpus);
    g_string_append_printf(s, "ram=%" PRIu64 "\n", (uint64_t)ms->ram_size);
    g_string_append_printf(s, "icount=%s\n",
                           replay_state.icount_shift ?: "default");
    g_string_append_printf(s, "sync=%" PRIu64 "\n",
                           replay_state.sync_interval);
    if (replay_sched_chaos(&seed)) {
        g_string_append_printf(s, "chaos=%" PRIu64 "\n", seed);
    }
    if (ms->kernel_cmdline && *ms->kernel_cmdline) {
        g_string_append_printf(s, "append=%s\n", ms->kernel_cmdline);
    }
    append_file_digest(s, "kernel", ms->kernel_filename);
    append_file_digest(s, "initrd", ms->initrd_filename);
    object_child_foreach_recursive(object_get_root(), collect_device, dev);
    g_ptr_array_sort(dev, compare_lines);
    for (i = 0; i < dev->len; i++) {
        g_string_append_printf(s, "%s\n", (char *)g_ptr_array_index(dev, i));
    }
    return g_string_free(s, false);
}

/* Split "key=value" lines into a table; device lines are keyed by path. */
static GHashTable *fingerprint_parse(const char *text)
{
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          g_free);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    char **l;

    for (l = lines; *l; l++) {
        char *eq = strchr(*l, '=');
        char *key, *val;

        if (!eq) {
            continue;
        }
        key = g_strndup(*l, eq - *l);
        val = g_strdup(eq + 1);
        if (!strcmp(key, "device")) {
            char *sp = strchr(val, ' ');

            g_free(key);
            key = g_strdup_printf("device %.*s",
                                  (int)(sp ? sp - val : strlen(val)), val);
        }
        g_hash_table_insert(t, key, val);
    }
    return t;
}

static const char *describe(const char *key, const char *val)
{
    return val ? val : (g_str_has_prefix(key, "device") ? "absent" : "unset");
}

char *replay_fingerprint_value(const char *text, const char *key)
{
    g_autoptr(GHashTable) t = fingerprint_parse(text);

    return g_strdup(g_hash_table_lookup(t, key));
}

/* Differences are reported most telling first: target before devices. */
static int key_rank(const char *key)
{
    static const char *const order[] = {
        "format", "target", "machine", "cpu", "smp", "ram", "icount",
        "kernel", "initrd", "append",
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(order); i++) {
        if (!strcmp(key, order[i])) {
            return i;
        }
    }
    return ARRAY_SIZE(order);
}

/* Keys that format 1 lacks (their check is skipped for its logs). */
static bool replay_fingerprint_key_is_late(const char *key)
{
    return !strcmp(key, "append") || !strcmp(key, "kernel") ||
           !strcmp(key, "initrd");
}

static gint compare_keys(gconstpointer a, gconstpointer b)
{
    const char *ka = *(const char *const *)a;
    const char *kb = *(const char *const *)b;
    int d = key_rank(ka) - key_rank(kb);

    return d ? d : strcmp(ka, kb);
}

bool replay_fingerprint_check_target(const char *recorded, Error **errp)
{
    g_autoptr(GHashTable) rec = fingerprint_parse(recorded);
    const char *t = g_hash_table_lookup(rec, "target");

    if (g_strcmp0(t, target_name())) {
        error_setg(errp, "record/replay: this command line does not match "
                   "the recording: target is %s in the log but %s in this "
                   "run", describe("target", t), target_name());
        return false;
    }
    return true;
}

bool replay_fingerprint_check(const char *recorded, const char *current,
                              Error **errp)
{
    g_autoptr(GHashTable) rec = fingerprint_parse(recorded);
    g_autoptr(GHashTable) cur = fingerprint_parse(current);
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    GHashTableIter it;
    gpointer k;
    guint i, ndiff = 0;
    const char *first = NULL;
    bool old_format = !g_strcmp0(g_hash_table_lookup(rec, "format"),
                                 "qrr-fingerprint-1");

    g_hash_table_iter_init(&it, rec);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        g_ptr_array_add(keys, k);
    }
    g_hash_table_iter_init(&it, cur);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (!g_hash_table_contains(rec, k)) {
            g_ptr_array_add(keys, k);
        }
    }
    g_ptr_array_sort(keys, compare_keys);
    for (i = 0; i < keys->len; i++) {
        const char *key = g_ptr_array_index(keys, i);
        const char *a = g_hash_table_lookup(rec, key);
        const char *b = g_hash_table_lookup(cur, key);

        if (!g_strcmp0(a, b) || !strcmp(key, "chaos")) {
            continue;
        }
        if (old_format && (replay_fingerprint_key_is_late(key) ||
                           !strcmp(key, "format"))) {
            continue;           /* a log from before these keys */
        }
        if (!strcmp(key, "qemu")) {
            warn_report("record/replay: the log was recorded with QEMU %s, "
                        "this is QEMU %s", describe(key, a), describe(key, b));
            continue;
        }
        ndiff++;
        if (!first) {
            first = key;
        }
    }
    if (ndiff) {
        const char *a = g_hash_table_lookup(rec, first);
        const char *b = g_hash_table_lookup(cur, first);
        g_autofree char *more = ndiff > 1 ?
            g_strdup_printf(" (and %u more differences)", ndiff - 1) : NULL;

        error_setg(errp, "record/replay: this command line does not match "
                   "the recording: %s is %s in the log but %s in this run%s",
                   first, describe(first, a), describe(first, b),
                   more ?: "");
        return false;
    }
    return true;
}
