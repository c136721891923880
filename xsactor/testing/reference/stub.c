/*
 * A fake hypervisor for Xen 4.17's C xenstored, loaded with LD_PRELOAD.
 *
 * xenstored imports 17 functions from libxenctrl, libxenevtchn and libxengnttab and opens
 * /proc/xen/xsd_port and /proc/xen/xsd_kva. This library defines those functions (unversioned
 * definitions in a preloaded object satisfy the binary's versioned references) and answers
 * the two /proc/xen files with memfds, so the daemon runs as a plain user process.
 *
 * Everything lives in the directory $XSACTOR_STUB_DIR, shared with the Python harness:
 *
 *   events          FIFO; the event channel device. The harness and the guest bridge write
 *                   4-byte port numbers into it; xenevtchn_pending() reads one.
 *   ring-<domid>    4096-byte file; a guest's ring page (instead of a grant mapping).
 *   notify-<domid>  FIFO; xenevtchn_notify() on a guest's port writes 'n' into it. 'X' is
 *                   written when the daemon unmaps the ring (domain destroyed or released).
 *   state-<domid>   what xc_domain_getinfo() answers: running (also when the file is
 *                   missing), shutdown, crashed, dying or gone (no such domain).
 *   virq-ack        FIFO; one byte is written each time the daemon has finished handling the
 *                   domain-exception VIRQ (xenevtchn_unmask of that port follows its check).
 *
 * Ports: the VIRQ is port 1; the interdomain channel of domain D is port STUB_PORT_BASE + D.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STUB_PORT_BASE 0x10000u
#define VIRQ_PORT 1u
#define MAX_DOMID 0x7ff0u
#define PAGE 4096

/* --- helpers ------------------------------------------------------------------------- */

static const char *stub_dir(void)
{
    const char *dir = getenv("XSACTOR_STUB_DIR");
    return dir && *dir ? dir : ".";
}

static void stub_path(char *buf, const char *name, int domid)
{
    if (domid < 0)
        snprintf(buf, PATH_MAX, "%s/%s", stub_dir(), name);
    else
        snprintf(buf, PATH_MAX, "%s/%s-%d", stub_dir(), name, domid);
}

/* open(2) without going through our own open() below. */
static int raw_open(const char *path, int flags, mode_t mode)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/* A FIFO opened read-write: never blocks on open, never reports hang-up. */
static int open_fifo(const char *path, int flags)
{
    if (mkfifo(path, 0600) == -1 && errno != EEXIST)
        return -1;
    return raw_open(path, O_RDWR | O_CLOEXEC | flags, 0);
}

/* Write without caring whether the reader is keeping up: a full FIFO already wakes it. */
static void poke(int fd, const void *data, size_t len)
{
    if (fd >= 0 && write(fd, data, len) < 0) {
        /* EAGAIN: the reader has plenty of wake-ups pending. */
    }
}

/* --- /proc/xen/xsd_port and /proc/xen/xsd_kva ------------------------------------------ */

/* -2: not ours; otherwise an fd (or -1 with errno). */
static int proc_xen_fd(const char *path)
{
    int fd;

    if (!path)
        return -2;
    if (strcmp(path, "/proc/xen/xsd_port") == 0) {
        /* dom0's remote port as text; the local port is chosen by bind_interdomain. */
        fd = memfd_create("xsd_port", MFD_CLOEXEC);
        if (fd >= 0 && (write(fd, "1\n", 2) != 2 || lseek(fd, 0, SEEK_SET) != 0)) {
            close(fd);
            return -1;
        }
        return fd;
    }
    if (strcmp(path, "/proc/xen/xsd_kva") == 0) {
        /* dom0's ring page: nobody writes into it, so the daemon never reads from it. */
        fd = memfd_create("xsd_kva", MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, PAGE) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    return -2;
}

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* open() and open64() differ only in O_LARGEFILE. */
#define OPEN_WRAPPER(name, extra_flags)                                 \
    int name(const char *path, int flags, ...)                          \
    {                                                                   \
        va_list ap;                                                     \
        mode_t mode;                                                    \
        int fd = proc_xen_fd(path);                                     \
                                                                        \
        if (fd != -2)                                                   \
            return fd;                                                  \
        va_start(ap, flags);                                            \
        mode = open_mode(flags, ap);                                    \
        va_end(ap);                                                     \
        return raw_open(path, flags | (extra_flags), mode);             \
    }

OPEN_WRAPPER(open, 0)
OPEN_WRAPPER(open64, O_LARGEFILE)

/* --- libxenctrl ---------------------------------------------------------------------- */

/* xc_dominfo_t of 4.17 is 112 bytes; only domid and the flags word matter to xenstored. */
typedef struct {
    uint32_t domid;
    uint32_t ssidref;
    uint32_t flags; /* bit 0 dying, 1 crashed, 2 shutdown, 5 running */
    unsigned char rest[112 - 12];
} stub_dominfo_t;

_Static_assert(sizeof(stub_dominfo_t) == 112, "xc_dominfo_t is 112 bytes in 4.17");

static int dummy_handle;

void *xc_interface_open(void *logger, void *dombuild_logger, unsigned open_flags)
{
    (void)logger, (void)dombuild_logger, (void)open_flags;
    return &dummy_handle;
}

int xc_interface_close(void *xch)
{
    (void)xch;
    return 0;
}

/* Fill at most one entry: the domain first_domid, as the state table says. */
int xc_domain_getinfo(void *xch, uint32_t first_domid, unsigned int max_doms,
                      stub_dominfo_t *info)
{
    char path[PATH_MAX], state[32] = "running";
    int fd;
    ssize_t n;

    (void)xch;
    if (max_doms == 0 || first_domid >= MAX_DOMID)
        return 0; /* no domain has a reserved id (DOMID_FIRST_RESERVED and above) */
    stub_path(path, "state", (int)first_domid);
    fd = raw_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
        n = read(fd, state, sizeof(state) - 1);
        close(fd);
        state[n > 0 ? n : 0] = '\0';
        state[strcspn(state, "\n")] = '\0';
    }
    if (strcmp(state, "gone") == 0)
        return 0;

    memset(info, 0, sizeof(*info));
    info->domid = first_domid;
    if (strcmp(state, "dying") == 0)
        info->flags = 1u << 0;
    else if (strcmp(state, "crashed") == 0)
        info->flags = 1u << 1 | 1u << 2;
    else if (strcmp(state, "shutdown") == 0)
        info->flags = 1u << 2;
    else
        info->flags = 1u << 5;
    return 1;
}

/* --- libxenevtchn ------------------------------------------------------------------- */

struct xenevtchn_handle {
    int fd; /* the events FIFO */
};

static int notify_fd[MAX_DOMID]; /* FIFO fd + 1 per bound domain, 0 when unbound */

void *xenevtchn_fdopen(void *logger, int fd, unsigned flags)
{
    struct xenevtchn_handle *h = calloc(1, sizeof(*h));

    (void)logger, (void)flags;
    if (h)
        h->fd = fd;
    return h;
}

void *xenevtchn_open(void *logger, unsigned flags)
{
    char path[PATH_MAX];
    int fd;

    (void)flags;
    stub_path(path, "events", -1);
    fd = open_fifo(path, 0); /* blocking: pending() reads only after poll() said readable */
    return fd < 0 ? NULL : xenevtchn_fdopen(logger, fd, 0);
}

int xenevtchn_fd(struct xenevtchn_handle *h)
{
    return h->fd;
}

int xenevtchn_bind_virq(struct xenevtchn_handle *h, unsigned int virq)
{
    (void)h, (void)virq;
    return VIRQ_PORT;
}

int xenevtchn_bind_interdomain(struct xenevtchn_handle *h, uint32_t domid, uint32_t remote)
{
    char path[PATH_MAX];
    int fd;

    (void)h, (void)remote;
    if (domid >= MAX_DOMID) {
        errno = EINVAL;
        return -1;
    }
    if (domid != 0 && notify_fd[domid] == 0) {
        stub_path(path, "notify", (int)domid);
        fd = open_fifo(path, O_NONBLOCK);
        if (fd < 0)
            return -1;
        notify_fd[domid] = fd + 1;
    }
    return (int)(STUB_PORT_BASE + domid);
}

int xenevtchn_unbind(struct xenevtchn_handle *h, uint32_t port)
{
    uint32_t domid = port - STUB_PORT_BASE;

    (void)h;
    if (port >= STUB_PORT_BASE && domid < MAX_DOMID && notify_fd[domid]) {
        close(notify_fd[domid] - 1);
        notify_fd[domid] = 0;
    }
    return 0;
}

int xenevtchn_notify(struct xenevtchn_handle *h, uint32_t port)
{
    uint32_t domid = port - STUB_PORT_BASE;

    (void)h;
    if (port >= STUB_PORT_BASE && domid < MAX_DOMID && notify_fd[domid])
        poke(notify_fd[domid] - 1, "n", 1);
    return 0;
}

int xenevtchn_pending(struct xenevtchn_handle *h)
{
    uint32_t port;
    size_t got = 0;
    ssize_t n;

    /* Writers write whole 4-byte ports (atomic on a FIFO); loop anyway. */
    while (got < sizeof(port)) {
        n = read(h->fd, (char *)&port + got, sizeof(port) - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return (int)port;
}

int xenevtchn_unmask(struct xenevtchn_handle *h, uint32_t port)
{
    static int ack_fd = -1;
    char path[PATH_MAX];

    (void)h;
    if (port == VIRQ_PORT) {
        /* The daemon has just finished check_domains() for this VIRQ. */
        if (ack_fd < 0) {
            stub_path(path, "virq-ack", -1);
            ack_fd = open_fifo(path, O_NONBLOCK);
        }
        poke(ack_fd, "v", 1);
    }
    return 0;
}

/* --- libxengnttab ------------------------------------------------------------------- */

static void *ring_addr[MAX_DOMID]; /* the mapping of each domain's ring, for unmap */

void *xengnttab_open(void *logger, unsigned open_flags)
{
    (void)logger, (void)open_flags;
    return &dummy_handle;
}

int xengnttab_close(void *xgt)
{
    (void)xgt;
    return 0;
}

int xengnttab_set_max_grants(void *xgt, uint32_t count)
{
    (void)xgt, (void)count;
    return 0;
}

/* The guest's "grant" is the shared file ring-<domid>, created if the harness did not. */
void *xengnttab_map_grant_ref(void *xgt, uint32_t domid, uint32_t ref, int prot)
{
    char path[PATH_MAX];
    struct stat st;
    void *addr;
    int fd;

    (void)xgt, (void)ref;
    if (domid >= MAX_DOMID) {
        errno = EINVAL;
        return NULL;
    }
    stub_path(path, "ring", (int)domid);
    fd = raw_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || (st.st_size < PAGE && ftruncate(fd, PAGE) != 0)) {
        close(fd);
        return NULL;
    }
    addr = mmap(NULL, PAGE, prot, MAP_SHARED, fd, 0);
    close(fd);
    if (addr == MAP_FAILED)
        return NULL;
    ring_addr[domid] = addr;
    return addr;
}

/* Unmapping means the daemon dropped the domain: tell its bridge with an 'X'. */
int xengnttab_unmap(void *xgt, void *start_address, uint32_t count)
{
    char path[PATH_MAX];
    uint32_t domid;
    int fd;

    (void)xgt;
    for (domid = 0; domid < MAX_DOMID; domid++) {
        if (ring_addr[domid] != start_address)
            continue;
        ring_addr[domid] = NULL;
        stub_path(path, "notify", (int)domid);
        fd = open_fifo(path, O_NONBLOCK);
        poke(fd, "X", 1);
        if (fd >= 0)
            close(fd);
        break;
    }
    return munmap(start_address, (size_t)count * PAGE);
}
