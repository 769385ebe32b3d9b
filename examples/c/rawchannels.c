/*
 * rawchannels: minichat on a raw channel (direct buffer access).
 *
 *   rawchannels [ipc://address]     (default ipc://RawChannels-v1)
 *
 * Each buffer holds an 8-byte timestamp (NT time, little-endian) followed
 * by the text. The sender takes a transport buffer, writes the timestamp
 * and the text into it and sends it; the receiver prints the latency and
 * the text, then disposes the buffer. Handshake: a "Hello" buffer each
 * way; at the end of stdin a buffer with the timestamp only says goodbye.
 * SERVER first, CLIENT if the address is taken; 64 KiB buffers, 4 and 4.
 */
#include <pthread.h>

#include "common.h"

#define STAMP_BYTES 8

static LMQ_CHANNEL channel;
static LMQ_TRANSPORT transport;

static void send_text(const char *text, size_t len) {
  LMQ_TRANSPORTBUFFER *buf = NULL;
  UINT64 now;
  int i;
  CHECK(LmqRawChannelGetBuffer(transport, INFINITE, &buf));
  if (len > buf->BufferSizeBytes - STAMP_BYTES)
    len = buf->BufferSizeBytes - STAMP_BYTES;
  now = sample_nt_now();
  for (i = 0; i < STAMP_BYTES; i++)
    buf->Buffer[i] = (BYTE)(now >> (8 * i));
  memcpy(buf->Buffer + STAMP_BYTES, text, len);
  buf->BufferSizeBytes = STAMP_BYTES + len;
  CHECK(LmqRawChannelSendBuffer(transport, &buf, FALSE)); /* sets buf to NULL */
}

static void *read_stdin(void *arg) {
  char line[4096];
  (void)arg;
  while (fgets(line, sizeof line, stdin) != NULL) {
    size_t len = strcspn(line, "\r\n");
    if (len > 0)
      send_text(line, len);
  }
  send_text("", 0);
  CHECK(LmqFlushChannel(channel, INFINITE));
  return NULL;
}

/* Receives one buffer: copies its text to `out`; returns the text length
 * (0 for the goodbye). */
static size_t receive_text(char *out, size_t cap, double *latency_us) {
  LMQ_TRANSPORTBUFFER *buf = NULL;
  UINT64 stamp = 0;
  size_t len;
  int i;
  CHECK(LmqRawChannelReceiveBuffer(transport, INFINITE, &buf));
  if (buf->BufferSizeBytes < STAMP_BYTES) {
    fprintf(stderr, "rawchannels: short buffer (%zu bytes)\n", (size_t)buf->BufferSizeBytes);
    exit(1);
  }
  for (i = 0; i < STAMP_BYTES; i++)
    stamp |= (UINT64)buf->Buffer[i] << (8 * i);
  *latency_us = sample_latency_us(stamp);
  len = buf->BufferSizeBytes - STAMP_BYTES;
  if (len >= cap)
    len = cap - 1;
  memcpy(out, buf->Buffer + STAMP_BYTES, len);
  out[len] = 0;
  CHECK(LmqRawChannelDisposeBuffer(transport, &buf, FALSE)); /* sets buf to NULL */
  return len;
}

int main(int argc, char **argv) {
  const char *address = argc > 1 ? argv[1] : "ipc://RawChannels-v1";
  const char *role = "SERVER";
  char text[4096];
  double latency;
  pthread_t reader;
  HRESULT hr;

  CHECK(LmqInitialize(LMQ_CURRENT_API_VERSION));
  CHECK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &channel));
  CHECK(LmqAddTransport(channel, sample_utf16(address), 64 * 1024, 4, 4,
                        LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, &transport));
  hr = LmqOpenChannel(channel, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA);
  if (hr == HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)) {
    role = "CLIENT";
    hr = LmqOpenChannel(channel, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA);
  }
  CHECK(hr);
  fprintf(stderr, "rawchannels: %s on %s, waiting for the peer...\n", role, address);

  send_text("Hello", 5);
  receive_text(text, sizeof text, &latency);
  if (strcmp(text, "Hello") != 0) {
    fprintf(stderr, "rawchannels: unexpected handshake \"%s\"\n", text);
    return 1;
  }
  printf("* peer joined\n");
  fflush(stdout);

  if (pthread_create(&reader, NULL, read_stdin, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  while (receive_text(text, sizeof text, &latency) > 0) {
    printf("peer: %s (%.1f us)\n", text, latency);
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
