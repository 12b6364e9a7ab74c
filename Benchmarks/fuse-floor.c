/*
 * fuse-floor: the least a libfuse 3.14 filesystem can do to serve one file, as the
 * benchmark's floor for vmediafs's `disc`. It shows one file, `f`, whose reads are
 * spliced from IMAGE (fuse_reply_data with the image's descriptor), with the same
 * max_read and readahead vmediafs uses, and nothing else: no emulator, no checks.
 *
 *   fuse-floor IMAGE MOUNTPOINT cached|direct
 *
 * cached: the kernel keeps the pages (keep_cache); direct: direct_io. Foreground; stops on
 * SIGTERM or unmount. Built by Benchmarks/run.sh with gcc; never used by vmediafs.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_READ 1032192u

static int image_fd = -1;
static off_t image_size;
static int direct_mode;

static void fill(struct stat *st, fuse_ino_t ino)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    if (ino == FUSE_ROOT_ID) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = image_size;
    }
}

static void floor_init(void *data, struct fuse_conn_info *conn)
{
    (void)data;
    conn->want |= FUSE_CAP_SPLICE_WRITE & conn->capable;
    conn->max_read = MAX_READ;
    conn->max_readahead = 2016 * 1024;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    memset(&e, 0, sizeof e);
    e.ino = 2;
    e.attr_timeout = e.entry_timeout = 3600;
    fill(&e.attr, 2);
    fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    (void)fi;
    fill(&st, ino);
    fuse_reply_attr(req, &st, 3600);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino != 2) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    fi->direct_io = direct_mode;
    fi->keep_cache = !direct_mode;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
    (void)ino;
    (void)fi;
    if (off >= image_size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if ((off_t)size > image_size - off)
        size = image_size - off;
    bv.buf[0].size = size;
    bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    bv.buf[0].fd = image_fd;
    bv.buf[0].pos = off;
    fuse_reply_data(req, &bv, 0);
}

int main(int argc, char **argv)
{
    struct fuse_lowlevel_ops ops;
    char *fargv[] = { argv[0], "-o", "max_read=1032192,fsname=fuse-floor,subtype=floor", NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse_session *se;
    struct fuse_loop_config *cfg;
    struct stat st;
    int rc;

    if (argc != 4 || (strcmp(argv[3], "cached") != 0 && strcmp(argv[3], "direct") != 0)) {
        fprintf(stderr, "usage: fuse-floor IMAGE MOUNTPOINT cached|direct\n");
        return 2;
    }
    direct_mode = strcmp(argv[3], "direct") == 0;
    image_fd = open(argv[1], O_RDONLY);
    if (image_fd < 0 || fstat(image_fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    image_size = st.st_size;

    memset(&ops, 0, sizeof ops);
    ops.init = floor_init;
    ops.lookup = floor_lookup;
    ops.getattr = floor_getattr;
    ops.open = floor_open;
    ops.read = floor_read;
    se = fuse_session_new(&args, &ops, sizeof ops, NULL);
    if (!se || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[2]) != 0) {
        fprintf(stderr, "fuse-floor: cannot mount on %s\n", argv[2]);
        return 1;
    }
    cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 16);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc ? 1 : 0;
}
