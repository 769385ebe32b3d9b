/*
 * minichat: a two-person chat over an LwMQ messaging channel.
 *
 *   minichat [ipc://address]        (default ipc://MiniChat-v1)
 *
 * Start two copies. Each tries to open the channel as SERVER and falls
 * back to CLIENT when the address is taken; each posts a "Hello" and waits
 * for the peer's. Then a thread posts every line read from stdin as a
 * one-frame message while the main thread prints every message received
 * ("peer: <text>"). At the end of stdin an empty message says goodbye;
 * the program exits once it has said goodbye and heard the peer's.
 *
 * Channel: 64 KiB buffers, 4 send and 4 receive, one mono-producer
 * unbounded NORMAL send queue, a mono-consumer receive queue.
 * minichat_ex (MINICHAT_LATENCY) stamps each frame with the precise system
 * time and prints the one-way latency beside each line.
 */
#include <pthread.h>

#include "common.h"

#ifndef MINICHAT_LATENCY
#define MINICHAT_LATENCY 0
#endif

#define STAMP (MINICHAT_LATENCY ? LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE : LMQ_TIMESTAMP_NONE)

static LMQ_CHANNEL channel;
static LMQ_SENDQUEUE queue;

static void post_text(const char *text, size_t len) {
  LMQ_MESSAGE m = NULL;
  CHECK(LmqCreateMessage(1, &m));
  CHECK(LmqAppendFrame(m, text, len, STAMP));
  CHECK(LmqPostMessage(queue, &m, INFINITE)); /* sets m to NULL */
}

/* Posts stdin line by line, then the goodbye (an empty message). */
static void *read_stdin(void *arg) {
  char line[4096];
  (void)arg;
  while (fgets(line, sizeof line, stdin) != NULL) {
    size_t len = strcspn(line, "\r\n");
    if (len > 0)
      post_text(line, len);
  }
  post_text("", 0);
  CHECK(LmqFlushChannel(channel, INFINITE));
  return NULL;
}

/* Receives one message; returns its first frame's bytes (NUL-terminated
 * copy in `out`) and length. */
static UINT64 receive_text(char *out, size_t cap, UINT64 *stamp) {
  LMQ_MESSAGE m = NULL;
  const void *data = NULL;
  UINT64 size = 0;
  ULONG frames = 0;
  CHECK(LmqReceiveMessage(channel, INFINITE, &frames, NULL, &m));
  CHECK(LmqGetFrameData(m, 0, &data, &size, stamp, NULL));
  if (size >= cap)
    size = cap - 1;
  memcpy(out, data, (size_t)size);
  out[size] = 0;
  CHECK(LmqDisposeReceivedMessage(&m)); /* sets m to NULL */
  return size;
}

int main(int argc, char **argv) {
  const char *address = argc > 1 ? argv[1] : "ipc://MiniChat-v1";
  const char *role = "SERVER";
  char text[4096];
  UINT64 stamp = 0;
  pthread_t reader;
  HRESULT hr;

  CHECK(LmqInitialize(LMQ_CURRENT_API_VERSION));
  CHECK(LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &channel));
  CHECK(LmqAddTransport(channel, sample_utf16(address), 64 * 1024, 4, 4,
                        LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL));
  CHECK(LmqAddSendQueue(channel, LMQ_SENDQUEUETYPE_MONO_PRODUCER_UNBOUNDED,
                        LMQ_SENDQUEUEPRIORITY_NORMAL, LMQ_QUEUECAPACITY_UNBOUNDED, &queue));
  hr = LmqOpenChannel(channel, LMQ_CHANNELROLE_SERVER,
                      LMQ_RECEIVEQUEUETYPE_MONO_CONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED);
  if (hr == HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)) {
    role = "CLIENT"; /* the address is taken: the peer is the server */
    hr = LmqOpenChannel(channel, LMQ_CHANNELROLE_CLIENT,
                        LMQ_RECEIVEQUEUETYPE_MONO_CONSUMER_UNBOUNDED, LMQ_QUEUECAPACITY_UNBOUNDED);
  }
  CHECK(hr);
  fprintf(stderr, "minichat: %s on %s, waiting for the peer...\n", role, address);

  post_text("Hello", 5);
  receive_text(text, sizeof text, &stamp);
  if (strcmp(text, "Hello") != 0) {
    fprintf(stderr, "minichat: unexpected handshake \"%s\"\n", text);
    return 1;
  }
  printf("* peer joined\n");
  fflush(stdout);

  if (pthread_create(&reader, NULL, read_stdin, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  while (receive_text(text, sizeof text, &stamp) > 0) {
    if (MINICHAT_LATENCY && stamp != LMQ_TIMESTAMP_NONE)
      printf("peer: %s (%.1f us)\n", text, sample_latency_us(stamp));
    else
      printf("peer: %s\n", text);
    fflush(stdout);
  }
  printf("* peer left\n");
  fflush(stdout);
  pthread_join(reader, NULL);

  CHECK(LmqCloseChannel(channel, 1000));
  CHECK(LmqDestroyChannel(&channel));
  CHECK(LmqTerminate());
  return 0;
}
