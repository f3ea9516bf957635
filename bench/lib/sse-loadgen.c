// SSE load generator for bench/compat: holds N event streams open on one server and stamps, with
// CLOCK_MONOTONIC (the clock of Node's process.hrtime and performance.now's origin-free base),
// when each stream first carries a given token. Written in C because on a 2-core machine the load
// generator shares the cores with the server it measures: a Node one spends 7-12 us per event
// receiving, as much CPU as the server spends sending, and its lag is counted as the server's.
//
//   sse-loadgen PORT PATH COUNT
// stdin, one command a line:   expect TOKEN   -> "armed", then "done D T1 T2 ..." once every stream
//                                                carried TOKEN (or 60 s passed); T in ns, 0 = not seen
//                              quit
// stdout: "ready" once every stream has its first `event: reset`, "error MESSAGE" on failure.
// stderr: nothing unless something is wrong. Reads are parsed only as far as the benchmark needs:
// a token is searched for in the raw bytes, with the tail of the last read kept so that a token
// split across reads is still found (an event is one chunk, so no chunk header falls inside it).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAIL 127
#define MAXTOKEN 120

typedef struct {
  int fd;
  int ready;
  uint64_t at;
  int tailLen;
  char tail[TAIL];
} Stream;

static Stream *streams;
static int count, epfd, readyCount, seenCount, spin;
static char token[MAXTOKEN + 1];
static int tokenLen;
static char buf[1 << 16];
static char scratch[TAIL + sizeof buf];

static uint64_t nowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what) {
  printf("error %s: %s\n", what, strerror(errno));
  fflush(stdout);
  exit(1);
}

static const char READY[] = "event: reset";

// Looks for `needle` in the stream's kept tail followed by the new bytes; keeps the new tail.
static int scan(Stream *s, const char *data, int n, const char *needle, int needleLen) {
  const char *hay = data;
  int hayLen = n;
  if (s->tailLen) {
    memcpy(scratch, s->tail, (size_t)s->tailLen);
    memcpy(scratch + s->tailLen, data, (size_t)n);
    hay = scratch;
    hayLen = s->tailLen + n;
  }
  int found = memmem(hay, (size_t)hayLen, needle, (size_t)needleLen) != NULL;
  s->tailLen = hayLen < TAIL ? hayLen : TAIL;
  memcpy(s->tail, hay + hayLen - s->tailLen, (size_t)s->tailLen);
  return found;
}

static void onReadable(Stream *s) {
  for (;;) {
    ssize_t n = recv(s->fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      fail("recv");
    }
    if (n == 0) {
      errno = ECONNRESET;
      fail("stream closed by the server");
    }
    if (!s->ready) {
      if (scan(s, buf, (int)n, READY, sizeof READY - 1)) {
        s->ready = 1;
        readyCount++;
      }
    } else if (tokenLen && !s->at) {
      uint64_t t = nowNs();
      if (scan(s, buf, (int)n, token, tokenLen)) {
        s->at = t;
        seenCount++;
      }
    }
    if ((size_t)n < sizeof buf) return;
  }
}

static void pump(int timeoutMs) {
  static struct epoll_event events[1024];
  int n = epoll_wait(epfd, events, 1024, timeoutMs);
  if (n < 0 && errno != EINTR) fail("epoll_wait");
  for (int i = 0; i < n; i++) onReadable(&streams[events[i].data.u32]);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: sse-loadgen PORT PATH COUNT\n");
    return 2;
  }
  int port = atoi(argv[1]);
  const char *path = argv[2];
  count = atoi(argv[3]);
  spin = getenv("SSE_LOADGEN_SPIN") != NULL;
  streams = calloc((size_t)count, sizeof *streams);
  epfd = epoll_create1(0);
  if (epfd < 0) fail("epoll_create1");
  char request[512];
  int requestLen = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n", path);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Opened in batches, each waited for, so the server's accept queue never overflows.
  for (int i = 0; i < count; i++) {
    Stream *s = &streams[i];
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0) fail("socket");
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect");
    if (send(s->fd, request, (size_t)requestLen, 0) != requestLen) fail("send");
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) fail("epoll_ctl");
    if ((i + 1) % 250 == 0 || i + 1 == count) {
      uint64_t until = nowNs() + 30000000000ull;
      while (readyCount < i + 1) {
        if (nowNs() > until) {
          errno = ETIMEDOUT;
          fail("streams did not start");
        }
        pump(100);
      }
    }
  }
  printf("ready\n");
  fflush(stdout);

  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "quit", 4) == 0) break;
    if (strncmp(line, "expect ", 7) != 0) continue;
    tokenLen = (int)strcspn(line + 7, "\r\n");
    if (tokenLen > MAXTOKEN) tokenLen = MAXTOKEN;
    memcpy(token, line + 7, (size_t)tokenLen);
    token[tokenLen] = 0;
    seenCount = 0;
    for (int i = 0; i < count; i++) streams[i].at = 0;
    // Whatever arrived before the command (pings) is read now, not counted later.
    pump(0);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    printf("armed\n");
    fflush(stdout);
    uint64_t until = nowNs() + 60000000000ull;
    while (seenCount < count && nowNs() < until) pump(spin ? 0 : 100);
    getrusage(RUSAGE_SELF, &r1);
    double cpuMs = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
                   (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
    printf("done %.1f", cpuMs);
    for (int i = 0; i < count; i++) printf(" %llu", (unsigned long long)streams[i].at);
    printf("\n");
    fflush(stdout);
    tokenLen = 0;
  }
  for (int i = 0; i < count; i++) close(streams[i].fd);
  return 0;
}
