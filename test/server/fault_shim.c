/*
 * An LD_PRELOAD shim of faults beyond the process for one member (test/server/fault_shim.ts).
 *
 * A slow or failing disk (test/server/disk_faults): it wraps fsync, fdatasync, write, pwrite, writev and pwritev; a call on a file under
 * $QKV_DISK_FAULT_DIR reads $QKV_DISK_FAULT_CTL (a line "delay_ms=N fail=none|sync|write") and
 * first sleeps N ms (sync calls only: a slow disk is slow to flush), then fails with EIO when
 * told to (fail=sync: fsync/fdatasync; fail=write: the writes too). Any other file, or no
 * control file, passes straight through. The control file is read at every call, so a test
 * turns faults on and off while the member runs.
 *
 * A wall clock that jumps (test/server/clock_jump): clock_gettime of the real-time clocks,
 * gettimeofday and time return the real time plus the seconds in $QKV_CLOCK_OFFSET_CTL (a line
 * "offset_s=N", read at every call). The monotonic clock is left alone, as a jump of the system
 * clock (NTP stepping it, an operator's date -s) leaves it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum fail_mode { FAIL_NONE, FAIL_SYNC, FAIL_WRITE };

struct fault {
  long delay_ms;
  enum fail_mode fail;
};

/* Whether fd is a file under the faulty directory. */
static int under_fault_dir(int fd) {
  const char *dir = getenv("QKV_DISK_FAULT_DIR");
  if (!dir || !*dir) return 0;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  return strncmp(target, dir, strlen(dir)) == 0;
}

/* The control file's current fault; none when it is missing or unreadable. Raw syscalls, so that
 * reading it never comes back through the wrappers. */
/* The first line of the control file named by $env into buf; 0 if there is none. */
static int read_control(const char *env, char *buf, size_t size) {
  const char *ctl = getenv(env);
  if (!ctl) return 0;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, ctl, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = syscall(SYS_read, fd, buf, size - 1);
  syscall(SYS_close, fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return 1;
}

static struct fault current_fault(void) {
  struct fault f = {0, FAIL_NONE};
  char buf[128];
  if (!read_control("QKV_DISK_FAULT_CTL", buf, sizeof buf)) return f;
  char mode[16] = "none";
  sscanf(buf, "delay_ms=%ld fail=%15s", &f.delay_ms, mode);
  if (strcmp(mode, "sync") == 0) f.fail = FAIL_SYNC;
  else if (strcmp(mode, "write") == 0) f.fail = FAIL_WRITE;
  return f;
}

static void sleep_ms(long ms) {
  if (ms <= 0) return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* 0: go on to the real call; -1: fail it with EIO. */
static int before_sync(int fd) {
  if (!under_fault_dir(fd)) return 0;
  struct fault f = current_fault();
  sleep_ms(f.delay_ms);
  if (f.fail != FAIL_NONE) {
    errno = EIO;
    return -1;
  }
  return 0;
}

static int before_write(int fd) {
  if (!under_fault_dir(fd)) return 0;
  if (current_fault().fail == FAIL_WRITE) {
    errno = EIO;
    return -1;
  }
  return 0;
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name)                    \
  static __typeof__(&name) real_##name; \
  if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
  REAL(fsync);
  if (before_sync(fd) < 0) return -1;
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync);
  if (before_sync(fd) < 0) return -1;
  return real_fdatasync(fd);
}

ssize_t write(int fd, const void *buf, size_t count) {
  REAL(write);
  if (before_write(fd) < 0) return -1;
  return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite);
  if (before_write(fd) < 0) return -1;
  return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite64);
  if (before_write(fd) < 0) return -1;
  return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  REAL(writev);
  if (before_write(fd) < 0) return -1;
  return real_writev(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  REAL(pwritev);
  if (before_write(fd) < 0) return -1;
  return real_pwritev(fd, iov, iovcnt, offset);
}

/* ---- the wall clock ---- */

static long clock_offset_s(void) {
  char buf[64];
  long offset = 0;
  if (read_control("QKV_CLOCK_OFFSET_CTL", buf, sizeof buf)) sscanf(buf, "offset_s=%ld", &offset);
  return offset;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  REAL(clock_gettime);
  int rc = real_clock_gettime(id, ts);
  if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += clock_offset_s();
  return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  REAL(gettimeofday);
  int rc = real_gettimeofday(tv, tz);
  if (rc == 0) tv->tv_sec += clock_offset_s();
  return rc;
}

time_t time(time_t *out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out) *out = ts.tv_sec;
  return ts.tv_sec;
}
