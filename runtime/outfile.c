/* outfile.c - see outfile.h. */
#include "runtime/outfile.h"
#include "runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINKS 40  /* as the kernel's ELOOP limit */

/* path with every symlink of its last component followed (the link is
 * kept, its target written); malloc'ed, NULL with errno on failure. */
static char *resolve_links(const char *path) {
  char *p = strdup(path);
  for (int hops = 0; p; hops++) {
    struct stat st;
    if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) return p;  /* ENOENT: a new file */
    if (hops == MAX_LINKS) {
      free(p);
      errno = ELOOP;
      return NULL;
    }
    size_t cap = (size_t)st.st_size + 2 > 256 ? (size_t)st.st_size + 2 : 256;
    char *target = malloc(cap);
    ssize_t n = target ? readlink(p, target, cap - 1) : -1;
    if (n < 0) {
      int e = target ? errno : ENOMEM;
      free(target);
      free(p);
      errno = e;
      return NULL;
    }
    target[n] = 0;
    char *next;
    const char *slash = strrchr(p, '/');
    if (target[0] == '/' || !slash) {
      next = target;
    } else {  /* relative to the link's directory */
      size_t dl = (size_t)(slash - p) + 1;
      next = malloc(dl + (size_t)n + 1);
      if (next) {
        memcpy(next, p, dl);
        memcpy(next + dl, target, (size_t)n + 1);
      }
      free(target);
    }
    free(p);
    p = next;
  }
  errno = ENOMEM;
  return NULL;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

static int current_umask(void) {
  mode_t mask = umask(0);
  umask(mask);
  return (int)mask;
}

/* PATH.tmpXXXXXX created exclusively (mode 0600 until commit). */
static int create_named_temp(const char *path, char **tmp_out) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t len = strlen(path);
  char *tmp = malloc(len + 11);
  if (!tmp) {
    errno = ENOMEM;
    return -1;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
               (uint64_t)(uintptr_t)&ts;
  for (int attempt = 0; attempt < 100; attempt++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;  /* LCG step */
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 4);
    for (int k = 0; k < 6; k++) tmp[len + 4 + k] = letters[(x >> (16 + 6 * k)) % 62];
    tmp[len + 10] = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      *tmp_out = tmp;
      return fd;
    }
    if (errno != EEXIST) break;
  }
  int e = errno;
  free(tmp);
  errno = e;
  return -1;
}

static int open_fail(rt_outfile *o, const char *path, int e, const char *why, char *err, size_t err_size) {
  free(o->path);
  free(o->tmp);
  memset(o, 0, sizeof *o);
  return rt_fail(err, err_size, "%s: cannot write: %s", path, why ? why : strerror(e));
}

int rt_out_open(rt_outfile *o, const char *path, int mode, char *err, size_t err_size) {
  memset(o, 0, sizeof *o);
  if (!path || !*path) return rt_fail(err, err_size, "cannot write: no file name");
  o->mode = mode & ~current_umask();
  o->path = resolve_links(path);
  if (!o->path) return open_fail(o, path, errno, NULL, err, err_size);
  struct stat st;
  int fd = -1;
  if (stat(o->path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return open_fail(o, path, 0, "it is a directory", err, err_size);
    if (!S_ISREG(st.st_mode)) {
      /* a device, FIFO or socket: write into it, never replace it;
       * O_NONBLOCK so that a FIFO without a reader fails (ENXIO) */
      fd = open(o->path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      if (fd < 0)
        return open_fail(o, path, errno, errno == ENXIO ? "a FIFO with no reader" : NULL, err, err_size);
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
      o->in_place = true;
      o->f = fdopen(fd, "wb");
      if (!o->f) {
        int e = errno;
        close(fd);
        return open_fail(o, path, e, NULL, err, err_size);
      }
      return 0;
    }
    o->mode = (int)(st.st_mode & 07777);  /* replacing a file keeps its mode */
  } else if (errno != ENOENT) {
    return open_fail(o, path, errno, NULL, err, err_size);
  }
  char *dir = dir_of(o->path);
  if (!dir) return open_fail(o, path, ENOMEM, NULL, err, err_size);
#ifdef O_TMPFILE
  /* unnamed until commit: a killed process leaves no temporary behind;
   * linking it needs /proc (or CAP_DAC_READ_SEARCH for AT_EMPTY_PATH) */
  if (access("/proc/self/fd", X_OK) == 0) {
    fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    o->anonymous = fd >= 0;
  }
#endif
  free(dir);
  if (fd < 0) fd = create_named_temp(o->path, &o->tmp);
  if (fd < 0) return open_fail(o, path, errno, NULL, err, err_size);
  o->f = fdopen(fd, "wb");
  if (!o->f) {
    int e = errno;
    close(fd);
    if (o->tmp) unlink(o->tmp);
    return open_fail(o, path, e, NULL, err, err_size);
  }
  return 0;
}

static void release(rt_outfile *o) {
  free(o->path);
  free(o->tmp);
  memset(o, 0, sizeof *o);
}

void rt_out_abort(rt_outfile *o) {
  if (!o->f) return;
  fclose(o->f);
  if (o->tmp) unlink(o->tmp);
  release(o);
}

/* Gives the anonymous file fd the name o->tmp beside o->path. */
static int link_anonymous(rt_outfile *o, int fd) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  for (int attempt = 0; attempt < 100; attempt++) {
    free(o->tmp);
    o->tmp = NULL;
    /* a name that does not exist yet: create and remove a named temp */
    int probe = create_named_temp(o->path, &o->tmp);
    if (probe < 0) return -1;
    close(probe);
    unlink(o->tmp);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno == EEXIST) continue;
    if (linkat(fd, "", AT_FDCWD, o->tmp, AT_EMPTY_PATH) == 0) return 0;
    int e = errno;
    free(o->tmp);
    o->tmp = NULL;
    errno = e;
    return -1;
  }
  errno = EEXIST;
  return -1;
}

int rt_out_commit(rt_outfile *o, char *err, size_t err_size) {
  if (!o->f) return rt_fail(err, err_size, "cannot write: the file is not open");
  int fd = fileno(o->f), e = 0;
  errno = 0;
  if (fflush(o->f) != 0 || ferror(o->f)) e = errno ? errno : EIO;
  if (o->in_place) {
    /* a device or FIFO: fsync may not apply (EINVAL); writes did */
    if (fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
    o->f = NULL;
    char *path = o->path;
    o->path = NULL;
    release(o);
    int rc = e ? rt_fail(err, err_size, "%s: cannot write: %s", path, strerror(e)) : 0;
    free(path);
    return rc;
  }
  if (!e && fchmod(fd, (mode_t)o->mode) != 0) e = errno;
  if (!e && fsync(fd) != 0) e = errno;
  if (!e && o->anonymous && link_anonymous(o, fd) != 0) e = errno ? errno : EIO;
  if (fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
  o->f = NULL;
  if (!e && rename(o->tmp, o->path) != 0) e = errno;
  if (e) {
    if (o->tmp) unlink(o->tmp);
    rt_fail(err, err_size, "%s: cannot write: %s", o->path, strerror(e));
    release(o);
    return 1;
  }
  /* the rename is durable once the directory is */
  char *dir = dir_of(o->path);
  int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  free(dir);
  release(o);
  return 0;
}

int rt_out_check(const char *path, char *err, size_t err_size) {
  rt_outfile o;
  if (rt_out_open(&o, path, 0666, err, err_size)) return 1;
  if (o.in_place) {  /* nothing written: the device or FIFO is untouched */
    fclose(o.f);
    release(&o);
    return 0;
  }
  rt_out_abort(&o);
  return 0;
}

int rt_out_write_file(const char *path, const void *data, size_t len, int mode, char *err, size_t err_size) {
  rt_outfile o;
  if (rt_out_open(&o, path, mode, err, err_size)) return 1;
  if (len && fwrite(data, 1, len, o.f) != len) {
    int e = errno ? errno : EIO;
    char *p = strdup(o.path ? o.path : path);
    rt_out_abort(&o);
    rt_fail(err, err_size, "%s: cannot write: %s", p ? p : path, strerror(e));
    free(p);
    return 1;
  }
  return rt_out_commit(&o, err, err_size);
}
