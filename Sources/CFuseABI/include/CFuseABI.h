// The FUSE kernel protocol as <linux/fuse.h> defines it (Debian 12 ships protocol 7.38), plus
// the few 7.40 additions that vmediafs's own wire layer uses and that header lacks:
// passthrough of reads to a backing file (Linux 6.9+). Nothing here is libfuse.
#ifndef CFUSEABI_H
#define CFUSEABI_H

#include <linux/fuse.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>

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

// ---- FUSE over io_uring (Linux 6.14+; the fuse module's enable_uring must be Y) ----------

/// FUSE_OVER_IO_URING is bit 41 of the INIT flags: bit 9 of `flags2`.
#define VMFS_FUSE_OVER_IO_URING_FLAGS2 (1u << 9)
#define VMFS_FUSE_IO_URING_CMD_REGISTER 1u
#define VMFS_FUSE_IO_URING_CMD_COMMIT_AND_FETCH 2u

/// The per-entry header buffer the kernel fills with a request and reads an answer from
/// (`struct fuse_uring_req_header`, protocol 7.42).
struct vmfs_fuse_uring_req_header {
    uint8_t in_out[128];          // fuse_in_header in, fuse_out_header out
    uint8_t op_in[128];           // the operation's fixed arguments (fuse_read_in, ...)
    uint64_t flags;               // fuse_uring_ent_in_out
    uint64_t commit_id;
    uint32_t payload_sz;
    uint32_t padding;
    uint64_t reserved;
};

/// An io_uring instance with 128-byte entries, its rings mapped. Submission takes `lock`:
/// answers are committed from any thread.
struct vmfs_ring;

/// Creates a ring of `entries` (a power of two); NULL with errno set if io_uring is
/// unavailable.
struct vmfs_ring *vmfs_ring_create(unsigned entries);
void vmfs_ring_destroy(struct vmfs_ring *ring);

/// Queues one FUSE uring command (REGISTER or COMMIT_AND_FETCH) for queue `qid` on the
/// /dev/fuse descriptor `dev`, with the entry's two buffers, and submits it; with `defer`,
/// only queues it, for the next `vmfs_ring_wait` or `vmfs_ring_flush` to submit. Returns 0
/// or -errno.
int vmfs_ring_fuse_cmd(struct vmfs_ring *ring, int dev, uint32_t cmd_op, uint16_t qid, uint64_t commit_id,
                       const struct iovec *buffers, uint64_t user_data, int defer);

/// Submits what was queued with `defer` and waits for one completion (one system call);
/// returns 0 with its user data and result, or -errno.
int vmfs_ring_wait(struct vmfs_ring *ring, uint64_t *user_data, int32_t *result);

/// Submits what was queued with `defer`, without waiting. Returns 0 or -errno.
int vmfs_ring_flush(struct vmfs_ring *ring);

/// Marks the calling thread as the waiter of `ring`'s queue in `generation` (non-zero), or
/// as no waiter (NULL, 0); `vmfs_ring_waiter_generation` reads it back for `ring` (0 if the
/// thread waits on no ring or on another).
void vmfs_ring_set_waiter(struct vmfs_ring *ring, uint64_t generation);
uint64_t vmfs_ring_waiter_generation(struct vmfs_ring *ring);
/// Marks this thread as one that lives as long as the FUSE connection (a queue's waiter, a
/// /dev/fuse worker, the ring's submitter). io_uring cancels the commands a thread submitted
/// when that thread exits, and a FUSE entry's COMMIT_AND_FETCH stays pending until the next
/// request comes: only such threads may submit one. `vmfs_thread_is_lasting` reads it back.
void vmfs_thread_mark_lasting(void);
int vmfs_thread_is_lasting(void);

/// Keeps the calling thread on CPU `cpu`; 0 or an errno.
int vmfs_pin_to_cpu(int cpu);

/// The number of CPUs the kernel may ever have (one FUSE uring queue each).
int vmfs_possible_cpus(void);

#endif
