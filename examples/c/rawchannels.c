/*
 * RawChannels: MiniChat on a raw channel (direct buffer access), with
 * several buffers in flight in each direction.
 *
 *   rawchannels [ipc://address]     (default ipc://RawChannels-v1)
 *
 * Each buffer holds an 8-byte timestamp (NT time, little-endian) followed
 * by one line of text. SERVER first, CLIENT if that fails; 64 KiB buffers,
 * 4 to send and 4 to receive.
 *
 * Sending (the stdin thread): every chunk read from stdin is cut into
 * lines; for each line the thread takes a transport buffer
 * (LmqRawChannelGetBuffer) and writes the timestamp and the line into it,
 * holding up to MaxPendingSendBuffers filled buffers before it sends them,
 * in the order obtained (LmqRawChannelSendBuffer).
 *
 * Receiving (the main thread): waits for one buffer, then takes whatever
 * else has arrived without waiting, up to MaxPendingReceiveBuffers; prints
 * latency and text of each, then disposes them, in order
 * (LmqRawChannelDisposeBuffer).
 *
 * Handshake: a "Hello" buffer each way; at the end of stdin a buffer with
 * the timestamp only says goodbye.
 */
#include <api-lwmq-time.h>
#include <api-lwmq-messaging.h>

#include <pthread.h>
#include <unistd.h>

#include "common.h"

#define STAMP_BYTES 8
#define MAX_PENDING_SEND_BUFFERS 4
#define MAX_PENDING_RECEIVE_BUFFERS 4

static LMQ_CHANNEL Channel;
static LMQ_TRANSPORT Transport;

/* Buffers taken and filled, not sent yet. */
static PLMQ_TRANSPORTBUFFER Pending[MAX_PENDING_SEND_BUFFERS];
static int PendingCount;

/* The most buffers held at once, reported at the end. */
static int MostSending, MostReceiving;

/* Sends the pending buffers in the order they were obtained. */
static void SendPending(void) {
  int i;
  if (PendingCount > MostSending)
    MostSending = PendingCount;
  for (i = 0; i < PendingCount; i++)
    CHECK(LmqRawChannelSendBuffer(Transport, &Pending[i], FALSE)); /* sets it to NULL */
  PendingCount = 0;
}

/* Takes a buffer, writes the timestamp and the text into it and keeps it
 * pending; sends the pending ones when MaxPendingSendBuffers are held. */
static void QueueText(const char *Text, size_t Length) {
  PLMQ_TRANSPORTBUFFER Buffer = NULL;
  FILETIME Now;
  ULONG64 Stamp;
  int i;
  if (PendingCount == MAX_PENDING_SEND_BUFFERS)
    SendPending();
  CHECK(LmqRawChannelGetBuffer(Transport, INFINITE, &Buffer));
  if (Length > Buffer->BufferSizeBytes - STAMP_BYTES)
    Length = (size_t)(Buffer->BufferSizeBytes - STAMP_BYTES);
  SampleGetSystemTimePreciseAsFileTime(&Now);
  Stamp = ((ULONG64)Now.dwHighDateTime << 32) | Now.dwLowDateTime;
  for (i = 0; i < STAMP_BYTES; i++)
    Buffer->Buffer[i] = (BYTE)(Stamp >> (8 * i));
  memcpy(Buffer->Buffer + STAMP_BYTES, Text, Length);
  Buffer->BufferSizeBytes = STAMP_BYTES + Length;
  Pending[PendingCount++] = Buffer;
}

/* The stdin thread: each chunk's lines go out as a batch of buffers. */
static void *ReadStdin(void *Unused) {
  char Chunk[8192];
  size_t Held = 0; /* bytes of an unfinished line at the start of Chunk */
  (void)Unused;
  for (;;) {
    ssize_t n = read(0, Chunk + Held, sizeof Chunk - Held);
    size_t Start = 0, End, i;
    if (n <= 0)
      break;
    End = Held + (size_t)n;
    for (i = 0; i < End; i++) {
      if (Chunk[i] == '\n') {
        size_t Length = i - Start;
        if (Length > 0 && Chunk[i - 1] == '\r')
          Length--;
        if (Length > 0)
          QueueText(Chunk + Start, Length);
        Start = i + 1;
      }
    }
    if (Start == 0 && End == sizeof Chunk) {
      QueueText(Chunk, End); /* a line longer than the chunk: sent cut */
      Start = End;
    }
    SendPending();
    Held = End - Start;
    memmove(Chunk, Chunk + Start, Held);
  }
  if (Held > 0)
    QueueText(Chunk, Held); /* a last line without its line end */
  QueueText("", 0);         /* goodbye */
  SendPending();
  CHECK(LmqFlushChannel(Channel, INFINITE));
  return NULL;
}

/* Prints one received buffer; returns its text length (0: goodbye). */
static size_t Show(const LMQ_TRANSPORTBUFFER *Buffer) {
  ULONG64 Stamp = 0;
  size_t Length;
  int i;
  if (Buffer->BufferSizeBytes < STAMP_BYTES) {
    fprintf(stderr, "rawchannels: short buffer (%llu bytes)\n",
            (unsigned long long)Buffer->BufferSizeBytes);
    exit(1);
  }
  for (i = 0; i < STAMP_BYTES; i++)
    Stamp |= (ULONG64)Buffer->Buffer[i] << (8 * i);
  Length = (size_t)(Buffer->BufferSizeBytes - STAMP_BYTES);
  if (Length > 0)
    printf("peer: %.*s (%.1f us)\n", (int)Length, (const char *)Buffer->Buffer + STAMP_BYTES,
           SampleLatencyUs(Stamp));
  return Length;
}

/* Receives a batch: one buffer (waiting), then those already there, up to
 * MaxPendingReceiveBuffers. Prints them and disposes them in order.
 * Returns 0 once the goodbye came. */
static int ReceiveBatch(void) {
  PLMQ_TRANSPORTBUFFER Buffers[MAX_PENDING_RECEIVE_BUFFERS];
  int Count = 0, i, Open = 1;
  HRESULT hr;
  memset(Buffers, 0, sizeof Buffers);
  CHECK(LmqRawChannelReceiveBuffer(Transport, INFINITE, &Buffers[Count++]));
  while (Count < MAX_PENDING_RECEIVE_BUFFERS) {
    hr = LmqRawChannelReceiveBuffer(Transport, 0, &Buffers[Count]);
    if (hr == HRESULT_FROM_WIN32(ERROR_TIMEOUT))
      break; /* nothing more for now */
    CHECK(hr);
    Count++;
  }
  if (Count > MostReceiving)
    MostReceiving = Count;
  for (i = 0; i < Count && Open; i++)
    Open = Show(Buffers[i]) > 0; /* the goodbye ends the conversation */
  fflush(stdout);
  for (i = 0; i < Count; i++)
    CHECK(LmqRawChannelDisposeBuffer(Transport, &Buffers[i], FALSE)); /* sets it to NULL */
  return Open;
}

/* Receives the peer's handshake, one buffer; true if it says "Hello". */
static int ReceiveHello(void) {
  PLMQ_TRANSPORTBUFFER Buffer = NULL;
  int Hello;
  CHECK(LmqRawChannelReceiveBuffer(Transport, INFINITE, &Buffer));
  Hello = Buffer->BufferSizeBytes == STAMP_BYTES + 5 &&
          memcmp(Buffer->Buffer + STAMP_BYTES, "Hello", 5) == 0;
  CHECK(LmqRawChannelDisposeBuffer(Transport, &Buffer, FALSE));
  return Hello;
}

int main(int argc, char **argv) {
  PCWSTR Descriptor = argc > 1 ? SampleWide(argv[1]) : SAMPLE_TEXT("ipc://RawChannels-v1");
  const char *Role = "SERVER";
  pthread_t Reader;
  HRESULT hr;

  CHECK(LmqCreateChannel(LMQ_CHANNELTYPE_RAW_ONE_TO_ONE, &Channel));
  CHECK(LmqAddTransport(Channel, Descriptor, 64 * 1024, MAX_PENDING_SEND_BUFFERS,
                        MAX_PENDING_RECEIVE_BUFFERS, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE,
                        &Transport));
  hr = LmqOpenChannel(Channel, LMQ_CHANNELROLE_SERVER, LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA);
  if (FAILED(hr)) {
    Role = "CLIENT";
    hr = LmqOpenChannel(Channel, LMQ_CHANNELROLE_CLIENT, LMQ_RECEIVEQUEUETYPE_NA,
                        LMQ_QUEUECAPACITY_NA);
  }
  CHECK(hr);
  fprintf(stderr, "rawchannels: %s on %s, waiting for the peer...\n", Role,
          argc > 1 ? argv[1] : "ipc://RawChannels-v1");

  QueueText("Hello", 5);
  SendPending();
  if (!ReceiveHello()) {
    fprintf(stderr, "rawchannels: unexpected handshake\n");
    return 1;
  }
  printf("* peer joined\n");
  fflush(stdout);

  if (pthread_create(&Reader, NULL, ReadStdin, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  while (ReceiveBatch())
    ;
  printf("* peer left\n");
  fflush(stdout);
  pthread_join(Reader, NULL);
  fprintf(stderr, "rawchannels: at most %d buffers held at once sending, %d receiving\n",
          MostSending, MostReceiving);

  CHECK(LmqCloseChannel(Channel, 1000));
  CHECK(LmqDestroyChannel(&Channel));
  return 0;
}
