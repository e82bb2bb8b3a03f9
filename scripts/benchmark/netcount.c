/*
** scripts/benchmark/netcount.c
** netcount.so: an LD_PRELOAD library that counts a client's round trips
** to the server.  See LICENSE
**
** libpq writes with send() and reads with recv() (pqsecure_raw_write /
** pqsecure_raw_read); this library wraps both and counts the calls that
** moved bytes, and a round trip each time bytes arrive after bytes were
** sent (a burst of sends followed by a burst of receives is one round
** trip, however many packets each burst takes).  The process reads the
** counters through quay_bench_net(), found with dlsym(RTLD_DEFAULT, ...):
** benchclock's clock.net() on the Quay side, net_counts() in floor_pg.c.
** Without the preload both report nothing.  The wrappers add a call and
** three increments per send/recv, the same on both sides.
*/
#define _GNU_SOURCE               /* RTLD_NEXT */
#include <dlfcn.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);

static send_fn real_send;
static recv_fn real_recv;
static long long nSend, nRecv, nTrip, nSentBytes, nRecvBytes;
static int bSentLast;             /* bytes were sent since the last receive */

void quay_bench_net(long long *aOut);

__attribute__((visibility("default")))
ssize_t send(int fd, const void *buf, size_t len, int flags) {
  ssize_t n;
  if (real_send == NULL) real_send = (send_fn)dlsym(RTLD_NEXT, "send");
  n = real_send(fd, buf, len, flags);
  if (n > 0) {
    nSend++;
    nSentBytes += n;
    bSentLast = 1;
  }
  return n;
}

__attribute__((visibility("default")))
ssize_t recv(int fd, void *buf, size_t len, int flags) {
  ssize_t n;
  if (real_recv == NULL) real_recv = (recv_fn)dlsym(RTLD_NEXT, "recv");
  n = real_recv(fd, buf, len, flags);
  if (n > 0) {
    nRecv++;
    nRecvBytes += n;
    if (bSentLast) nTrip++;
    bSentLast = 0;
  }
  return n;
}

/* aOut[5]: sends, receives, round trips, bytes sent, bytes received. */
__attribute__((visibility("default")))
void quay_bench_net(long long *aOut) {
  aOut[0] = nSend;
  aOut[1] = nRecv;
  aOut[2] = nTrip;
  aOut[3] = nSentBytes;
  aOut[4] = nRecvBytes;
}
