#ifndef VMEDIAFS_CPOSIXSHIMS_H
#define VMEDIAFS_CPOSIXSHIMS_H
// Small C shims for what Swift cannot import directly. Each says why it exists.
#include <sys/types.h>
#include <stddef.h>

// Thread-local credential switches. glibc's setgroups() changes every thread of the
// process (it broadcasts to all threads); the raw system calls change only the calling
// thread, which is what a request handler acting for one user needs. Return the raw
// syscall result (setfsuid/setfsgid return the previous id).
long vmfs_thread_setgroups(size_t n, const gid_t *list);
long vmfs_thread_setfsuid(uid_t u);
long vmfs_thread_setfsgid(gid_t g);

// ioctl request numbers are _IOR()/_IO() macros; Swift cannot import them.
unsigned long vmfs_ioctl_blkgetsize64(void);
unsigned long vmfs_ioctl_cdrom_lockdoor(void);
// Filesystem magic numbers for statfs().f_type checks.
long vmfs_nfs_super_magic(void);
// The f_type of the filesystem holding fd (statfs.h is not in Swift's Glibc module); -1 on error.
long vmfs_fstatfs_type(int fd);
// ioctl() is variadic in C; Swift cannot call variadic C functions.
int vmfs_ioctl_ptr(int fd, unsigned long request, void *arg);
int vmfs_ioctl_int(int fd, unsigned long request, int arg);
// Opens `path` with O_PATH (a location only: no data access, so a FIFO or device does
// nothing yet; O_PATH is a _GNU_SOURCE name Swift does not see). With `magic_links` 0 it
// uses openat2(2) (no glibc wrapper in Debian 12) to refuse (ELOOP) passing through procfs's
// descriptor links (/proc/self/fd/N, /proc/PID/root, ...): a user-named path must never
// reach the daemon's own open files. Returns the descriptor, or -1 with errno set.
int vmfs_open_location(const char *path, int magic_links);
// Frees `length` bytes at `offset` of a file, keeping its size (fallocate with
// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, _GNU_SOURCE names): a sparse cache drops a block.
int vmfs_punch_hole(int fd, long long offset, long long length);
#endif
