/*
 * MiniChatEx: MiniChat with latency. Every frame is stamped with the
 * precise system time (LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE) and each
 * received line is printed with its one-way latency in microseconds,
 * computed with LmqTimeElapsed.
 *
 *   minichat_ex [ipc://address]     (default ipc://MiniChat-v1)
 */
#define MINICHAT_LATENCY 1
#include "minichat.c"
