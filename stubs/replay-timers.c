/*
 * Without time travel no snapshot notes a timer: timer_free() and
 * timer_deinit() have nothing to tell.  (A file of its own, so that
 * test-replay-timers links the real one beside the other stubs.)
 */
#include "qemu/osdep.h"
#include "system/replay.h"

void replay_timer_gone(QEMUTimer *ts)
{
}
