/*
 * Record/replay hooks for builds without the replay engine (user mode):
 * everything behaves as with record/replay off.
 */
#include "qemu/osdep.h"
#include "exec/replay-core.h"

void replay_finish(void)
{
}

void replay_save_random(int ret, void *buf, size_t len)
{
}

int replay_read_random(void *buf, size_t len)
{
    return 0;
}

bool replay_reverse_step(CPUState *cpu)
{
    return false;
}

bool replay_reverse_continue(void)
{
    return false;
}
