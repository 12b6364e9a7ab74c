// folios FILE: how much of FILE's page cache is held in large folios.
//
// Maps FILE, touches every page (so each is in the page cache and mapped), then looks up
// each page's frame in /proc/self/pagemap and its flags in /proc/kpageflags (root only):
// a frame flagged as the head or a tail of a compound page belongs to a large folio.
// Prints "LARGE TOTAL": pages in large folios, pages looked at. The kernel's read path
// walks the page cache one folio at a time, so a file cached in 4 KiB folios costs more
// per byte to read than one cached in large folios (Benchmarks/run.sh, cases b and e).
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { KPF_COMPOUND_HEAD = 15, KPF_COMPOUND_TAIL = 16 };

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: folios FILE\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) { perror(argv[1]); return 1; }
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (size_t)((st.st_size + page - 1) / page);
    volatile const char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { perror("mmap"); return 1; }
    int pagemap = open("/proc/self/pagemap", O_RDONLY);
    int kflags = open("/proc/kpageflags", O_RDONLY);
    if (pagemap < 0 || kflags < 0) { perror("/proc (root is needed)"); return 1; }
    size_t large = 0, seen = 0;
    uintptr_t first = (uintptr_t)map / (uintptr_t)page;
    for (size_t i = 0; i < pages; i++) {
        (void)map[i * (size_t)page];
        uint64_t entry, flags;
        if (pread(pagemap, &entry, 8, (off_t)((first + i) * 8)) != 8) continue;
        if (!(entry >> 63)) continue;                      // not present
        uint64_t pfn = entry & ((1ULL << 55) - 1);
        if (pfn == 0 || pread(kflags, &flags, 8, (off_t)(pfn * 8)) != 8) continue;
        seen++;
        if (flags & ((1ULL << KPF_COMPOUND_HEAD) | (1ULL << KPF_COMPOUND_TAIL))) large++;
    }
    printf("%zu %zu\n", large, seen);
    return 0;
}
