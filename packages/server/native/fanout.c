// Sends one buffer to many TCP sockets in one call: the fan-out of an SSE frame to thousands of
// streams. Node writes to a socket through its stream machinery and libuv, one JS call each;
// here it is one send(2) per socket in a C loop, split over threads when there are many, so the
// kernel's per-send work (on loopback it also runs the receiver's TCP input) is spread over the
// cores while the event loop waits for the call to return.
//
// sendAll(fds: Int32Array, data: Buffer, out: Int32Array, threads: number): void
//   out[i] = bytes sent on fds[i] (possibly fewer than data.length), or -errno. Never blocks:
//   MSG_DONTWAIT, and MSG_NOSIGNAL so a closed peer is EPIPE, not a signal.
// The caller only passes sockets nothing else is writing to at the time (libuv's queue for them
// is empty), and writes any remainder through Node, so bytes stay in order.
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MAX_THREADS 8

typedef struct {
  const int32_t *fds;
  int32_t *out;
  size_t from, to;
  const void *data;
  size_t len;
} Slice;

static void *sendSlice(void *arg) {
  Slice *s = arg;
  for (size_t i = s->from; i < s->to; i++) {
    ssize_t n;
    do n = send(s->fds[i], s->data, s->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    s->out[i] = n >= 0 ? (int32_t)n : -errno;
  }
  return NULL;
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value SendAll(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) return fail(env, "sendAll(fds, data, out, threads)");
  napi_typedarray_type type;
  size_t count, outCount;
  void *fds, *out, *data;
  size_t len;
  if (napi_get_typedarray_info(env, argv[0], &type, &count, &fds, NULL, NULL) != napi_ok || type != napi_int32_array)
    return fail(env, "fds must be an Int32Array");
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return fail(env, "data must be a Buffer");
  if (napi_get_typedarray_info(env, argv[2], &type, &outCount, &out, NULL, NULL) != napi_ok || type != napi_int32_array || outCount < count)
    return fail(env, "out must be an Int32Array as long as fds");
  int32_t threads = 1;
  napi_get_value_int32(env, argv[3], &threads);
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if ((size_t)threads > count) threads = count ? (int32_t)count : 1;

  Slice slices[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (int t = 0; t < threads; t++) {
    slices[t] = (Slice){fds, out, count * (size_t)t / (size_t)threads, count * (size_t)(t + 1) / (size_t)threads, data, len};
  }
  // The calling thread takes the first slice; a thread that cannot start leaves its slice to it.
  for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, sendSlice, &slices[t]) == 0;
  sendSlice(&slices[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t]) pthread_join(ids[t], NULL);
    else sendSlice(&slices[t]);
  }
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sendAll", NAPI_AUTO_LENGTH, SendAll, NULL, &fn);
  napi_set_named_property(env, exports, "sendAll", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
