#ifndef VMEDIAFS_CFUSE3_SHIM_H
#define VMEDIAFS_CFUSE3_SHIM_H
// libfuse 3.14's low-level API. 314 (not 35+) keeps fuse_session_loop_mt a real
// function Swift can call; later values turn it into a function-like macro.
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>
#include <sys/statvfs.h>
#endif
