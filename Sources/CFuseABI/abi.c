#define _GNU_SOURCE
#include "CFuseABI.h"
#include <sys/ioctl.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/eventfd.h>

// The 7.40 layout of the backing map (<linux/fuse.h> of 6.9 and later).
struct vmfs_fuse_backing_map {
    int32_t fd;
    uint32_t flags;
    uint64_t padding;
};

#define VMFS_FUSE_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct vmfs_fuse_backing_map)
#define VMFS_FUSE_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

int vmfs_fuse_backing_open(int dev, int backing) {
    struct vmfs_fuse_backing_map map;
    memset(&map, 0, sizeof map);
    map.fd = backing;
    return ioctl(dev, VMFS_FUSE_DEV_IOC_BACKING_OPEN, &map);
}

int vmfs_fuse_backing_close(int dev, uint32_t backing_id) {
    return ioctl(dev, VMFS_FUSE_DEV_IOC_BACKING_CLOSE, &backing_id);
}

int vmfs_fuse_dev_clone(int clone, int dev) {
    uint32_t master = (uint32_t)dev;
    return ioctl(clone, FUSE_DEV_IOC_CLONE, &master);
}

long vmfs_splice(int in, int64_t *in_offset, int out, int64_t *out_offset, size_t length, int move) {
    return splice(in, (off64_t *)in_offset, out, (off64_t *)out_offset, length, move ? SPLICE_F_MOVE : 0);
}

int vmfs_pipe2_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int vmfs_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

int vmfs_get_pipe_size(int fd) { return fcntl(fd, F_GETPIPE_SZ); }

int vmfs_eventfd_cloexec(void) { return eventfd(0, EFD_CLOEXEC); }
