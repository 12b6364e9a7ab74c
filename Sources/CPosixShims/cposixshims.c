#define _GNU_SOURCE
#include "cposixshims.h"
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/cdrom.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <linux/openat2.h>
#include <fcntl.h>
#include <string.h>

long vmfs_thread_setgroups(size_t n, const gid_t *list) { return syscall(SYS_setgroups, n, list); }
long vmfs_thread_setfsuid(uid_t u) { return syscall(SYS_setfsuid, u); }
long vmfs_thread_setfsgid(gid_t g) { return syscall(SYS_setfsgid, g); }
unsigned long vmfs_ioctl_blkgetsize64(void) { return BLKGETSIZE64; }
unsigned long vmfs_ioctl_cdrom_lockdoor(void) { return CDROM_LOCKDOOR; }
long vmfs_nfs_super_magic(void) { return NFS_SUPER_MAGIC; }
int vmfs_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int vmfs_ioctl_int(int fd, unsigned long request, int arg) { return ioctl(fd, request, arg); }
long vmfs_fstatfs_type(int fd) { struct statfs s; if (fstatfs(fd, &s) != 0) return -1; return (long)s.f_type; }

int vmfs_open_location(const char *path, int magic_links) {
    if (magic_links) return open(path, O_PATH | O_CLOEXEC);
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}

int vmfs_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}
