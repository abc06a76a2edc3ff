/**
 * wakeup_floor: what one wake-up per event costs the reading process,
 * before it does any work with the event.
 *
 * The gateway benchmark's default delivery (--batch 1) writes each event on
 * its own, so a client that keeps up is woken once per event.  This program
 * measures the floor of that on the machine at hand: a writer process sends
 * EVENTS messages of BYTES bytes (the size of a zlib-stream compressed
 * MESSAGE_CREATE frame in the gateway benchmark) over loopback TCP, one per
 * write, PAUSE-US apart (48 by default: the pace at which the gateway
 * benchmark's fake sends them), so that the reader is asleep when each one
 * arrives; the reader does what an event loop must (epoll_wait, then recv
 * until EAGAIN) and nothing else.  It prints the reader's CPU time (user
 * and system, getrusage) per 100,000 events and how many times it woke.
 *
 *   build/release/bench/wakeup_floor [events] [bytes] [pause-us]
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

static int die(const char *what) {
  perror(what);
  return 1;
}

static void writer(int fd, long events, size_t bytes, long pause_us) {
  char *msg = malloc(bytes);
  if (!msg) _exit(1);
  memset(msg, 'x', bytes);
  /* Paced by spinning on the clock, not by sleeping: a sleep's timer
   * slack would stretch 50 us to over 100. */
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  double next = (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
  for (long i = 0; i < events; i++) {
    for (;;) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3 >= next) break;
    }
    next += (double)pause_us;
    size_t off = 0;
    while (off < bytes) {
      ssize_t n = write(fd, msg + off, bytes - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(1);
      off += (size_t)n;
    }
  }
  free(msg);
  _exit(0);
}

int main(int argc, char **argv) {
  long events = argc > 1 ? atol(argv[1]) : 100000;
  size_t bytes = argc > 2 ? (size_t)atol(argv[2]) : 140;
  long pause_us = argc > 3 ? atol(argv[3]) : 48;
  if (events <= 0 || bytes == 0 || bytes > 65536 || pause_us < 0) {
    fprintf(stderr, "usage: wakeup_floor [events > 0] [bytes 1..65536] [pause-us >= 0]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sin;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, (struct sockaddr *)&sin, &sl) != 0)
    return die("listen");
  pid_t pid = fork();
  if (pid < 0) return die("fork");
  if (pid == 0) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof sin) != 0) _exit(1);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    writer(c, events, bytes, pause_us);
  }
  int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
  if (fd < 0) return die("accept");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return die("epoll");

  struct rusage r0, r1;
  struct timespec w0, w1;
  getrusage(RUSAGE_SELF, &r0);
  clock_gettime(CLOCK_MONOTONIC, &w0);
  long long want = (long long)events * (long long)bytes, got = 0, wakeups = 0;
  char buf[65536];
  while (got < want) {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return die("epoll_wait (writer stalled)");
    wakeups++;
    for (;;) {
      ssize_t k = recv(fd, buf, sizeof buf, 0);
      if (k > 0) {
        got += k;
        continue;
      }
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && errno == EAGAIN) break;
      return die("recv (writer gone)");
    }
  }
  getrusage(RUSAGE_SELF, &r1);
  clock_gettime(CLOCK_MONOTONIC, &w1);
  double wall = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9;
  int st;
  waitpid(pid, &st, 0);

  double user = tv_s(r1.ru_utime) - tv_s(r0.ru_utime);
  double sys = tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
  double scale = 100000.0 / (double)events;
  printf("wake-up floor: %ld events of %zu bytes, one write each, %ld us apart\n", events, bytes,
         pause_us);
  printf("  %.2f s from first to last, one event every %.1f us on average\n", wall,
         wall * 1e6 / (double)events);
  printf("  reader woke %lld times (%.2f per event), %ld context switches\n", wakeups,
         (double)wakeups / (double)events,
         (r1.ru_nvcsw + r1.ru_nivcsw) - (r0.ru_nvcsw + r0.ru_nivcsw));
  printf("  reader CPU per 100,000 events: %.3f s (user %.3f + sys %.3f), %.2f us per event\n",
         (user + sys) * scale, user * scale, sys * scale, (user + sys) * 1e6 / (double)events);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
