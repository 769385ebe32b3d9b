/*
 * MiniChat: a two-person chat over an LwMQ messaging channel.
 *
 *   minichat [ipc://address]        (default ipc://MiniChat-v1)
 *
 * Start two copies. Each adds an IPC transport (64 KiB buffers, 4 to send,
 * 4 to receive, both directions) and one mono-producer unbounded NORMAL
 * send queue, tries to open the channel as SERVER and falls back to CLIENT
 * when that fails (the address is taken: the other copy is the server).
 * Each posts "Hello" and waits for the peer's. Then a thread posts every
 * line read from stdin as a one-frame message while the main thread prints
 * every message received ("peer: <text>"). At the end of stdin an empty
 * message says goodbye; the program exits once it has said goodbye and
 * heard the peer's.
 *
 * MiniChatEx (minichat_ex.c, MINICHAT_LATENCY) stamps each frame with the
 * precise system time and prints the one-way latency beside each line.
 *
 * Written against LwMQ's own headers and names: the LwMQ calls are those of
 * the Windows sample; threads and stdin use POSIX instead of Windows calls.
 */
#include <api-lwmq-time.h>
#include <api-lwmq-messaging.h>

#include <pthread.h>

#include "common.h"

#ifndef MINICHAT_LATENCY
#define MINICHAT_LATENCY 0
#endif

#if MINICHAT_LATENCY
#define FRAME_TIMESTAMP LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE
#else
#define FRAME_TIMESTAMP LMQ_TIMESTAMP_NONE
#endif

static LMQ_CHANNEL Channel;
static LMQ_SENDQUEUE SendQueue;

static void PostText(const char *Text, size_t Length) {
  LMQ_MESSAGE Message = NULL;
  CHECK(LmqCreateMessage(1, &Message));
  CHECK(LmqAppendFrame(Message, Text, Length, FRAME_TIMESTAMP));
  /* An unbounded queue never waits: the timeout is 0. On success the
   * library owns the message and sets Message to NULL. */
  CHECK(LmqPostMessage(SendQueue, &Message, 0));
}

/* The stdin thread: posts each line, then the goodbye (an empty message). */
static void *ReadStdin(void *Unused) {
  char Line[4096];
  (void)Unused;
  while (fgets(Line, sizeof Line, stdin) != NULL) {
    size_t Length = strcspn(Line, "\r\n");
    if (Length > 0)
      PostText(Line, Length);
  }
  PostText("", 0);
  CHECK(LmqFlushChannel(Channel, INFINITE));
  return NULL;
}

/* Receives one message: copies its first frame's text to Text (NUL
 * terminated) and returns its length; Timestamp gets the frame's stamp. */
static UINT64 ReceiveText(char *Text, size_t Capacity, ULONG64 *Timestamp) {
  LMQ_MESSAGE Message = NULL;
  USHORT FrameCount = 0;
  UINT64 PayloadSize = 0;
  PCVOID Data = NULL;
  UINT64 DataSize = 0;
  CHECK(LmqReceiveMessage(Channel, INFINITE, &FrameCount, &PayloadSize, &Message));
  CHECK(LmqGetFrameData(Message, 0, &Data, &DataSize, Timestamp, NULL));
  if (DataSize >= Capacity)
    DataSize = Capacity - 1;
  memcpy(Text, Data, (size_t)DataSize);
  Text[DataSize] = 0;
  CHECK(LmqDisposeReceivedMessage(&Message)); /* sets Message to NULL */
  return DataSize;
}

int main(int argc, char **argv) {
  PCWSTR Descriptor = argc > 1 ? SampleWide(argv[1]) : SAMPLE_TEXT("ipc://MiniChat-v1");
  const char *Role = "SERVER";
  char Text[4096];
  ULONG64 Timestamp = 0;
  pthread_t Reader;
  HRESULT hr;

  /* No LmqInitialize: the library initialises on first use. */
  CHECK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &Channel));
  CHECK(LmqAddTransport(Channel, Descriptor, 64 * 1024, 4, 4,
                        LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  CHECK(LmqAddSendQueue(Channel, LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED,
                        LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &SendQueue));
  hr = LmqOpenChannel(Channel, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED,
                      LMQ_QUEUECAPACITY_UNBOUNDED);
  if (FAILED(hr)) {
    Role = "CLIENT"; /* the address is taken: the peer is the server */
    hr = LmqOpenChannel(Channel, LMQ_CHANNELROLE_CLIENT,
                        LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED);
  }
  CHECK(hr);
  fprintf(stderr, "minichat: %s on %s, waiting for the peer...\n", Role,
          argc > 1 ? argv[1] : "ipc://MiniChat-v1");

  PostText("Hello", 5);
  ReceiveText(Text, sizeof Text, &Timestamp);
  if (strcmp(Text, "Hello") != 0) {
    fprintf(stderr, "minichat: unexpected handshake \"%s\"\n", Text);
    return 1;
  }
  printf("* peer joined\n");
  fflush(stdout);

  if (pthread_create(&Reader, NULL, ReadStdin, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  while (ReceiveText(Text, sizeof Text, &Timestamp) > 0) {
    if (MINICHAT_LATENCY && Timestamp != LMQ_TIMESTAMP_NONE)
      printf("peer: %s (%.1f us)\n", Text, SampleLatencyUs(Timestamp));
    else
      printf("peer: %s\n", Text);
    fflush(stdout);
  }
  printf("* peer left\n");
  fflush(stdout);
  pthread_join(Reader, NULL);

  CHECK(LmqCloseChannel(Channel, 1000));
  CHECK(LmqDestroyChannel(&Channel));
  return 0;
}
