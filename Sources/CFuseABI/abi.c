#define _GNU_SOURCE
#include "CFuseABI.h"
#include <sys/ioctl.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>

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

// ---- io_uring, by its three system calls (no liburing: Debian 12's is too old for uring_cmd).

struct vmfs_ring {
    int fd;
    unsigned sq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    unsigned char *sqes;             // 128-byte entries
    void *sq_map, *cq_map;
    size_t sq_len, cq_len, sqes_len;
    pthread_mutex_t lock;            // submissions
    pthread_mutex_t cq_lock;         // taking completions
    int deferred;                    // entries queued without io_uring_enter (atomic)
};

// The ring whose waiter this thread is, and the waiter's generation (0: none).
static __thread struct vmfs_ring *vmfs_waiter_ring;
static __thread uint64_t vmfs_waiter_generation;

void vmfs_ring_set_waiter(struct vmfs_ring *r, uint64_t generation) {
    vmfs_waiter_ring = r;
    vmfs_waiter_generation = generation;
}

uint64_t vmfs_ring_waiter_generation(struct vmfs_ring *r) {
    return vmfs_waiter_ring == r ? vmfs_waiter_generation : 0;
}

// Whether this thread lives as long as the connection (see the header).
static __thread int vmfs_lasting;

void vmfs_thread_mark_lasting(void) { vmfs_lasting = 1; }

int vmfs_thread_is_lasting(void) { return vmfs_lasting; }

struct vmfs_ring *vmfs_ring_create(unsigned entries) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQE128;
    int fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (fd < 0) return NULL;
    struct vmfs_ring *r = calloc(1, sizeof *r);
    if (!r) { close(fd); errno = ENOMEM; return NULL; }
    r->fd = fd;
    r->sq_entries = p.sq_entries;
    r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (r->cq_len > r->sq_len) r->sq_len = r->cq_len;
        r->cq_len = r->sq_len;
    }
    r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED) goto fail;
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED) goto fail;
    }
    r->sqes_len = p.sq_entries * 128;
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) goto fail;
    unsigned char *sq = r->sq_map, *cq = r->cq_map;
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->cq_lock, NULL);
    return r;
fail:
    {
        int e = errno;
        close(fd);
        free(r);
        errno = e;
        return NULL;
    }
}

void vmfs_ring_destroy(struct vmfs_ring *r) {
    if (!r) return;
    munmap(r->sqes, r->sqes_len);
    if (r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_len);
    munmap(r->sq_map, r->sq_len);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->cq_lock);
    free(r);
}

// struct fuse_uring_cmd_req, in the entry's command area.
struct vmfs_fuse_uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

int vmfs_ring_fuse_cmd(struct vmfs_ring *r, int dev, uint32_t cmd_op, uint16_t qid, uint64_t commit_id,
                       const struct iovec *buffers, uint64_t user_data, int defer) {
    pthread_mutex_lock(&r->lock);
    unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    unsigned tail = *r->sq_tail;
    if (tail - head >= r->sq_entries) { pthread_mutex_unlock(&r->lock); return -EBUSY; }
    unsigned index = tail & *r->sq_mask;
    struct io_uring_sqe *sqe = (struct io_uring_sqe *)(r->sqes + (size_t)index * 128);
    memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = dev;
    sqe->cmd_op = cmd_op;
    sqe->addr = (uint64_t)(uintptr_t)buffers;
    sqe->len = 2;
    sqe->user_data = user_data;
    struct vmfs_fuse_uring_cmd_req *req = (struct vmfs_fuse_uring_cmd_req *)sqe->cmd;
    req->qid = qid;
    req->commit_id = commit_id;
    r->sq_array[index] = index;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (defer) {
        __atomic_store_n(&r->deferred, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    // Everything queued goes in, this entry and any queued before it with `defer`.
    int rc;
    do {
        rc = (int)syscall(__NR_io_uring_enter, r->fd, r->sq_entries, 0, 0, NULL, 0);
    } while (rc < 0 && errno == EINTR);
    int e = rc < 0 ? -errno : 0;
    pthread_mutex_unlock(&r->lock);
    return e;
}

// Submits whatever entries were queued without entering the kernel, and, with `wait`,
// waits for at least one completion in the same system call.
static int vmfs_ring_enter(struct vmfs_ring *r, int wait) {
    unsigned submit = __atomic_exchange_n(&r->deferred, 0, __ATOMIC_ACQ_REL) ? r->sq_entries : 0;
    if (!submit && !wait) return 0;
    int rc = (int)syscall(__NR_io_uring_enter, r->fd, submit, wait ? 1 : 0, wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
    if (rc < 0) {
        int e = errno;
        // The entries may not have gone in: leave them for the next enter.
        if (submit) __atomic_store_n(&r->deferred, 1, __ATOMIC_RELEASE);
        return e == EINTR ? 0 : -e;
    }
    return 0;
}

int vmfs_ring_flush(struct vmfs_ring *r) { return vmfs_ring_enter(r, 0); }

int vmfs_ring_wait(struct vmfs_ring *r, uint64_t *user_data, int32_t *result) {
    for (;;) {
        pthread_mutex_lock(&r->cq_lock);
        unsigned head = *r->cq_head;
        unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        if (head != tail) {
            struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];
            *user_data = cqe->user_data;
            *result = cqe->res;
            __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&r->cq_lock);
            // Answers queued by this thread go in before the next request is served (on an
            // error they stay queued for the next enter).
            vmfs_ring_enter(r, 0);
            return 0;
        }
        pthread_mutex_unlock(&r->cq_lock);
        int rc = vmfs_ring_enter(r, 1);
        if (rc < 0 && rc != -EBUSY) return rc;
    }
}

int vmfs_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int vmfs_possible_cpus(void) {
    FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
    if (!f) return (int)sysconf(_SC_NPROCESSORS_CONF);
    int lo = 0, hi = 0, n = 0;
    // "0-1" or "0": the highest index + 1 (the kernel numbers its queues by CPU id).
    char buf[256];
    if (fgets(buf, sizeof buf, f)) {
        char *p = buf;
        while (*p) {
            if (sscanf(p, "%d-%d", &lo, &hi) == 2) { if (hi + 1 > n) n = hi + 1; }
            else if (sscanf(p, "%d", &lo) == 1) { if (lo + 1 > n) n = lo + 1; }
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
    }
    fclose(f);
    return n > 0 ? n : 1;
}
