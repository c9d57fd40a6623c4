/* Tools have no record/replay: the mode is always off. */
#include "qemu/osdep.h"
#include "system/replay.h"

ReplayMode replay_mode;
