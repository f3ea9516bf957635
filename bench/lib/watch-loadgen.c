// Watch load generator for the fan-out benchmarks: holds N watches open on one server and stamps,
// with CLOCK_MONOTONIC (the clock of Node's process.hrtime), when each first carries a given
// token. Written in C because on a 2-core machine the load generator shares the cores with the
// server it measures: the Node one spent 7-12 us per SSE event and ~22 us per blocking answer
// (parse, re-arm), as much CPU as the server spent sending, and its lag counted as the server's.
//
//   watch-loadgen sse PORT PATH COUNT
//   watch-loadgen blocking PORT PATH COUNT INDEX_HEADER     (x-beacon-index, x-consul-index)
// sse: each watch is one event stream; ready once each has its first `event: reset`.
// blocking: each watch is a keep-alive connection asking PATH (index 0), then PATH?index=N&wait=60s
//   again after every answer, N its INDEX_HEADER; ready once each has had its first answer. A
//   token is looked for in each answer's body; re-arms are sent after every answer read in one
//   epoll batch is stamped, so the generator's own writes do not delay its stamps.
// stdin, one command a line:   expect TOKEN   -> "armed", then "done CPU_MS T1 T2 ..." once every
//                                                watch carried TOKEN (or 60 s passed); T in ns,
//                                                0 = not seen
//                              quit
// stdout: "ready", or "error MESSAGE" on failure. SSE bytes are searched raw, with the tail of
// the last read kept so a token split across reads is still found (an event is one chunk, so no
// chunk header falls inside it).
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
  // blocking: the answer being read, and the index to ask past next
  char *buf;
  int len, cap;
  unsigned long long index;
  int rearm;
} Stream;

static Stream *streams;
static int count, epfd, readyCount, seenCount, spin, blocking;
static const char *path, *indexHeader;
static int *rearms, rearmCount;
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

static void onSseBytes(Stream *s, const char *data, int n, uint64_t t) {
  if (!s->ready) {
    if (scan(s, data, n, READY, sizeof READY - 1)) {
      s->ready = 1;
      readyCount++;
    }
  } else if (tokenLen && !s->at) {
    if (scan(s, data, n, token, tokenLen)) {
      s->at = t;
      seenCount++;
    }
  }
}

static void sendQuery(Stream *s) {
  char req[1024];
  int n = s->index ? snprintf(req, sizeof req, "GET %s%sindex=%llu&wait=60s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path, strchr(path, '?') ? "&" : "?", s->index)
                   : snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  if (send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n) fail("send (re-arm)");
}

// A header's value as a number, from a NUL-terminated head; 0 when absent.
static unsigned long long headerNumber(const char *head, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "\n%s:", name);
  const char *at = strcasestr(head, key);
  return at ? strtoull(at + strlen(key), NULL, 10) : 0;
}

static void onBlockingBytes(Stream *s, const char *data, int n, uint64_t t) {
  if (s->len + n > s->cap) {
    while (s->len + n > s->cap) s->cap = s->cap ? s->cap * 2 : 4096;
    s->buf = realloc(s->buf, (size_t)s->cap + 1);
    if (!s->buf) fail("realloc");
  }
  memcpy(s->buf + s->len, data, (size_t)n);
  s->len += n;
  for (;;) {
    s->buf[s->len] = 0;
    char *end = memmem(s->buf, (size_t)s->len, "\r\n\r\n", 4);
    if (!end) return;
    *end = 0;
    int status = atoi(s->buf + 9);
    unsigned long long length = headerNumber(s->buf, "content-length");
    unsigned long long index = headerNumber(s->buf, indexHeader);
    *end = '\r';
    int bodyAt = (int)(end - s->buf) + 4;
    if (s->len < bodyAt + (int)length) return;
    if (status != 200 || !index) {
      errno = EPROTO;
      fail("a blocking query was not answered 200 with an index");
    }
    if (!s->ready) {
      s->ready = 1;
      readyCount++;
    } else if (tokenLen && !s->at && memmem(s->buf + bodyAt, length, token, (size_t)tokenLen)) {
      s->at = t;
      seenCount++;
    }
    if (index > s->index) s->index = index;
    if (!s->rearm) {
      s->rearm = 1;
      rearms[rearmCount++] = (int)(s - streams);
    }
    int used = bodyAt + (int)length;
    memmove(s->buf, s->buf + used, (size_t)(s->len - used));
    s->len -= used;
  }
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
      fail("watch closed by the server");
    }
    uint64_t t = nowNs();
    if (blocking) onBlockingBytes(s, buf, (int)n, t);
    else onSseBytes(s, buf, (int)n, t);
    if ((size_t)n < sizeof buf) return;
  }
}

static void pump(int timeoutMs) {
  static struct epoll_event events[1024];
  int n = epoll_wait(epfd, events, 1024, timeoutMs);
  if (n < 0 && errno != EINTR) fail("epoll_wait");
  for (int i = 0; i < n; i++) onReadable(&streams[events[i].data.u32]);
  // Every answer of this batch is stamped: now the next queries go out.
  for (int i = 0; i < rearmCount; i++) {
    streams[rearms[i]].rearm = 0;
    sendQuery(&streams[rearms[i]]);
  }
  rearmCount = 0;
}

int main(int argc, char **argv) {
  if (argc < 5 || (strcmp(argv[1], "sse") != 0 && strcmp(argv[1], "blocking") != 0) || (strcmp(argv[1], "blocking") == 0 && argc != 6)) {
    fprintf(stderr, "usage: watch-loadgen sse PORT PATH COUNT | watch-loadgen blocking PORT PATH COUNT INDEX_HEADER\n");
    return 2;
  }
  blocking = strcmp(argv[1], "blocking") == 0;
  int port = atoi(argv[2]);
  path = argv[3];
  count = atoi(argv[4]);
  indexHeader = blocking ? argv[5] : "";
  spin = getenv("WATCH_LOADGEN_SPIN") != NULL;
  streams = calloc((size_t)count, sizeof *streams);
  rearms = calloc((size_t)count, sizeof *rearms);
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
    if (blocking) sendQuery(s);
    else if (send(s->fd, request, (size_t)requestLen, 0) != requestLen) fail("send");
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
