// Batched UDP for the DNS front end: recvmmsg/sendmmsg on a socket of its own, bound with
// SO_REUSEPORT so each DNS process has its own receive queue. Node's dgram costs one recvmsg,
// one sendmsg, one JS callback, a 64 KiB buffer and an address object per packet; a profile of a
// DNS process showed that machinery, not the answering code, is most of the CPU per query.
//
// The JS side owns the memory: `in` holds BATCH slots of IN_SLOT bytes (queries), `out` BATCH
// slots of outSlot bytes (replies), `meta` (Int32Array) per packet: [length, family, port,
// ip0..ip3 (16 address bytes), reply length]. One JS call per batch: `onBatch(n)` reads the n
// queries and writes reply lengths (0: no reply); the replies then go out in one sendmmsg.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#define BATCH 64
#define IN_SLOT 4096
#define META 8
/** Batches read per readable event before the loop gets a turn (timers, IPC, other sockets). */
#define MAX_ROUNDS 16

typedef struct {
  int fd;
  int closed;
  uv_poll_t poll;
  napi_env env;
  napi_ref onBatch;
  napi_ref buffers[3];
  napi_async_context async;
  uint8_t *in;
  uint8_t *out;
  size_t outSlot;
  int32_t *meta;
  struct mmsghdr rmsg[BATCH];
  struct mmsghdr smsg[BATCH];
  struct iovec riov[BATCH];
  struct iovec siov[BATCH];
  struct sockaddr_storage addr[BATCH];
} reader;

#define CHECK(call)                                                                          \
  do {                                                                                       \
    if ((call) != napi_ok) {                                                                 \
      napi_throw_error(env, NULL, "beacon udp: " #call " failed");                           \
      return NULL;                                                                           \
    }                                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_value code, text, err;
  napi_create_string_utf8(env, errno == EADDRINUSE ? "EADDRINUSE" : "EUDP", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_throw(env, err);
  return NULL;
}

/** bind(host, port, ipv6) → fd: a non-blocking UDP socket with SO_REUSEPORT. */
static napi_value Bind(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[64];
  size_t hostLen;
  uint32_t port;
  bool v6;
  CHECK(napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hostLen));
  CHECK(napi_get_value_uint32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &v6));
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return throw_errno(env, "bad IPv6 address");
    len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return throw_errno(env, "bad IPv4 address");
    len = sizeof *a;
  }
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    close(fd);
    return throw_errno(env, "setsockopt");
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return throw_errno(env, "bind");
  }
  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

/** The one argument of a call that takes a socket descriptor; false (an exception pending) when it is not one. */
static bool fd_arg(napi_env env, napi_callback_info info, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "beacon udp: a socket descriptor was expected");
    return false;
  }
  return true;
}

/** localPort(fd) → the bound port (to learn the port of a bind to 0). */
static napi_value LocalPort(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return throw_errno(env, "getsockname");
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  napi_value out;
  CHECK(napi_create_int32(env, port, &out));
  return out;
}

static void fill_meta(int32_t *m, const struct sockaddr_storage *ss, int len) {
  m[0] = len;
  m[7] = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    m[1] = 6;
    m[2] = ntohs(a->sin6_port);
    memcpy(&m[3], &a->sin6_addr, 16);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    m[1] = 4;
    m[2] = ntohs(a->sin_port);
    memset(&m[3], 0, 16);
    memcpy(&m[3], &a->sin_addr, 4);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  reader *r = handle->data;
  if (status < 0 || r->closed) return;
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1];
  napi_get_reference_value(env, r->onBatch, &cb);
  napi_get_global(env, &recv);
  for (int round = 0; round < MAX_ROUNDS && !r->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      r->rmsg[i].msg_hdr.msg_namelen = sizeof r->addr[i];
      r->rmsg[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(r->fd, r->rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      // A datagram larger than a slot is cut; the parser sees a short packet and answers FORMERR or drops it.
      int len = (int)r->rmsg[i].msg_len;
      fill_meta(&r->meta[i * META], &r->addr[i], len > IN_SLOT ? IN_SLOT : len);
    }
    napi_create_int32(env, n, &argv[0]);
    napi_value result;
    // make_callback: promise jobs and process.nextTick queued by the handler run after each batch.
    if (napi_make_callback(env, r->async, recv, cb, 1, argv, &result) != napi_ok) {
      bool pending;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
      break;
    }
    if (r->closed) break;
    int k = 0;
    for (int i = 0; i < n; i++) {
      int olen = r->meta[i * META + 7];
      if (olen <= 0 || (size_t)olen > r->outSlot) continue;
      r->siov[k].iov_base = r->out + (size_t)i * r->outSlot;
      r->siov[k].iov_len = olen;
      r->smsg[k].msg_hdr.msg_iov = &r->siov[k];
      r->smsg[k].msg_hdr.msg_iovlen = 1;
      r->smsg[k].msg_hdr.msg_name = &r->addr[i];
      r->smsg[k].msg_hdr.msg_namelen = r->addr[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
      r->smsg[k].msg_hdr.msg_control = NULL;
      r->smsg[k].msg_hdr.msg_controllen = 0;
      r->smsg[k].msg_hdr.msg_flags = 0;
      k++;
    }
    // A full send buffer drops what does not fit, as a full socket would for any UDP sender.
    for (int sent = 0; sent < k;) {
      int s = sendmmsg(r->fd, r->smsg + sent, k - sent, MSG_DONTWAIT);
      if (s <= 0) {
        if (s < 0 && errno == EINTR) continue;
        // One reply the kernel refused (e.g. an unreachable address) must not cost the rest.
        sent++;
        continue;
      }
      sent += s;
    }
    if (n < BATCH) break;
  }
  napi_close_handle_scope(env, scope);
}

static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc");
  int32_t fd;
  uint32_t outSlot;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  r->fd = fd;
  r->env = env;
  size_t inLen, outLen, metaLen;
  void *data;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &inLen));
  r->in = data;
  CHECK(napi_get_buffer_info(env, argv[2], &data, &outLen));
  r->out = data;
  CHECK(napi_get_buffer_info(env, argv[3], &data, &metaLen));
  r->meta = data;
  CHECK(napi_get_value_uint32(env, argv[5], &outSlot));
  r->outSlot = outSlot;
  if (inLen < BATCH * IN_SLOT || outLen < BATCH * (size_t)outSlot || metaLen < BATCH * META * sizeof(int32_t)) {
    free(r);
    napi_throw_range_error(env, NULL, "beacon udp: buffers too small");
    return NULL;
  }
  for (int i = 0; i < 3; i++) CHECK(napi_create_reference(env, argv[1 + i], 1, &r->buffers[i]));
  CHECK(napi_create_reference(env, argv[4], 1, &r->onBatch));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "BeaconDnsUdp", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &r->async));
  for (int i = 0; i < BATCH; i++) {
    r->riov[i].iov_base = r->in + (size_t)i * IN_SLOT;
    r->riov[i].iov_len = IN_SLOT;
    r->rmsg[i].msg_hdr.msg_iov = &r->riov[i];
    r->rmsg[i].msg_hdr.msg_iovlen = 1;
    r->rmsg[i].msg_hdr.msg_name = &r->addr[i];
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &r->poll, fd) != 0) {
    free(r);
    napi_throw_error(env, NULL, "beacon udp: uv_poll_init failed");
    return NULL;
  }
  r->poll.data = r;
  uv_poll_start(&r->poll, UV_READABLE, on_readable);
  napi_value ext;
  CHECK(napi_create_external(env, r, NULL, NULL, &ext));
  return ext;
}

/** sendTo(fd, buf, family, port, ip16): one reply outside a batch (an answer that came later). */
static napi_value SendTo(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, family;
  uint32_t port;
  void *buf, *ip;
  size_t len, ipLen;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_buffer_info(env, argv[1], &buf, &len));
  CHECK(napi_get_value_int32(env, argv[2], &family));
  CHECK(napi_get_value_uint32(env, argv[3], &port));
  CHECK(napi_get_buffer_info(env, argv[4], &ip, &ipLen));
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t alen;
  if (family == 6 && ipLen >= 16) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    memcpy(&a->sin6_addr, ip, 16);
    alen = sizeof *a;
  } else if (ipLen >= 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    memcpy(&a->sin_addr, ip, 4);
    alen = sizeof *a;
  } else {
    napi_throw_range_error(env, NULL, "beacon udp: bad address");
    return NULL;
  }
  ssize_t s = sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss, alen);
  napi_value out;
  CHECK(napi_get_boolean(env, s >= 0, &out));
  return out;
}

static void on_closed(uv_handle_t *h) {
  reader *r = h->data;
  close(r->fd);
  free(r);
}

/** stop(reader): stops reading and closes the socket once libuv lets go of it. */
static napi_value Stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader *r;
  CHECK(napi_get_value_external(env, argv[0], (void **)&r));
  if (r->closed) return NULL;
  r->closed = 1;
  uv_poll_stop(&r->poll);
  napi_delete_reference(env, r->onBatch);
  for (int i = 0; i < 3; i++) napi_delete_reference(env, r->buffers[i]);
  napi_async_destroy(env, r->async);
  uv_close((uv_handle_t *)&r->poll, on_closed);
  return NULL;
}

/** closeFd(fd): a socket bound but never started. */
static napi_value CloseFd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  close(fd);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"bind", NULL, Bind, NULL, NULL, NULL, napi_default, NULL},
      {"localPort", NULL, LocalPort, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, Start, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, SendTo, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, Stop, NULL, NULL, NULL, napi_default, NULL},
      {"closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value batch, inSlot, meta;
  napi_create_int32(env, BATCH, &batch);
  napi_create_int32(env, IN_SLOT, &inSlot);
  napi_create_int32(env, META, &meta);
  napi_set_named_property(env, exports, "BATCH", batch);
  napi_set_named_property(env, exports, "IN_SLOT", inSlot);
  napi_set_named_property(env, exports, "META", meta);
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
