// The FUSE kernel protocol as <linux/fuse.h> defines it (Debian 12 ships protocol 7.38), plus
// the few 7.40 additions that vmediafs's own wire layer uses and that header lacks:
// passthrough of reads to a backing file (Linux 6.9+). Nothing here is libfuse.
#ifndef CFUSEABI_H
#define CFUSEABI_H

#include <linux/fuse.h>
#include <stdint.h>
#include <stddef.h>

/// FUSE_PASSTHROUGH is bit 37 of the INIT flags, i.e. bit 5 of `flags2` (protocol 7.40).
#define VMFS_FUSE_PASSTHROUGH_FLAGS2 (1u << 5)
/// An OPEN answer whose reads and writes the kernel sends to a registered backing file.
#define VMFS_FOPEN_PASSTHROUGH (1u << 7)

/// Registers `backing` with the connection `dev` (a /dev/fuse descriptor) for passthrough.
/// Returns the backing id (> 0) or -1 with errno set. Exists because `FUSE_DEV_IOC_BACKING_OPEN`
/// is an `_IOW` macro over a struct that Swift cannot expand.
int vmfs_fuse_backing_open(int dev, int backing);

/// Drops a backing id that no open file uses any more. Returns 0 or -1 with errno set.
int vmfs_fuse_backing_close(int dev, uint32_t backing_id);

/// Gives `clone` (a fresh open of /dev/fuse) the connection of `dev`, so that each worker
/// thread reads requests from a descriptor of its own (`FUSE_DEV_IOC_CLONE`).
int vmfs_fuse_dev_clone(int clone, int dev);

/// splice(2), pipe2(2), the pipe size fcntl and eventfd(2): GNU extensions that Swift's Glibc
/// module does not show. Each returns what the call returns, with errno set on failure.
long vmfs_splice(int in, int64_t *in_offset, int out, int64_t *out_offset, size_t length, int move);
int vmfs_pipe2_cloexec(int fds[2]);
/// Sets the pipe's capacity (rounded up by the kernel); returns it, or -1.
int vmfs_set_pipe_size(int fd, int size);
int vmfs_get_pipe_size(int fd);
int vmfs_eventfd_cloexec(void);

#endif
