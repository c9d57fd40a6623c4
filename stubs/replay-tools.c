/*
 * Record/replay hooks for the tools (qemu-img, qemu-io, ...), which share
 * the main loop, timers, block layer and chardev code with the emulator but
 * never record or replay: every hook passes straight through.
 */
#include "qemu/osdep.h"
#include "system/replay.h"
#include "block/aio.h"

bool replay_events_enabled(void)
{
    return false;
}

int64_t replay_save_clock(ReplayClockKind kind, int64_t clock,
                          int64_t raw_icount)
{
    return clock;
}

int64_t replay_read_clock(ReplayClockKind kind, int64_t clock,
                          int64_t raw_icount)
{
    return clock;
}

void replay_checkpoint_end(void)
{
}

uint64_t replay_get_current_icount(void)
{
    return 0;
}

void replay_bh_schedule_event(QEMUBH *bh)
{
    qemu_bh_schedule(bh);
}

void replay_bh_gone(QEMUBH *bh)
{
}

void replay_bh_schedule_oneshot_event(AioContext *ctx,
                                      QEMUBHFunc *cb, void *opaque)
{
    aio_bh_schedule_oneshot(ctx, cb, opaque);
}

bool replay_checkpoint(ReplayCheckpoint checkpoint)
{
    return true;
}

void replay_async_events(void)
{
}

void replay_mutex_lock(void)
{
}

void replay_mutex_unlock(void)
{
}

void replay_register_char_driver(struct Chardev *chr)
{
}

void replay_chr_be_write(struct Chardev *s, const uint8_t *buf, int len)
{
    g_assert_not_reached();
}

void replay_char_write_event_save(int res, int offset)
{
    g_assert_not_reached();
}

void replay_char_write_event_load(int *res, int *offset, int len)
{
    g_assert_not_reached();
}

int replay_char_read_all_load(uint8_t *buf, int len)
{
    g_assert_not_reached();
}

void replay_char_read_all_save_error(int res)
{
    g_assert_not_reached();
}

void replay_char_read_all_save_buf(uint8_t *buf, int offset)
{
    g_assert_not_reached();
}

ssize_t replay_read_entropy(int fd, void *buf, size_t size)
{
    ssize_t res = read(fd, buf, size);

    return res < 0 ? -errno : res;
}
