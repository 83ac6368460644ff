/*
 * jail: Landlock + seccomp-bpf + ptrace supervisor around a Jupyter kernel.
 *
 *   jail --policy FILE [--verbose] -- CMD [ARG...]
 *   jail --check [--policy FILE]
 *
 * Copyright (C) the jupyter-backendai authors.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Layers (see README.md for the threat model):
 *   1. Landlock, applied to the child before exec: writes only beneath the policy's writable
 *      paths; with ABI >= 6 also no signals to processes outside the sandbox (kernel-enforced);
 *      with network "listen" and ABI >= 4 no TCP connect at all.
 *   2. seccomp-bpf deciding on register values only: EPERM (via a logged trap) for calls a
 *      kernel never needs, kill for foreign-arch / x32 calls, ENOSYS for clone3 (so that glibc
 *      falls back to clone, whose flags BPF can read), SECCOMP_RET_TRACE only for process
 *      creation (never threads), signal sending, execve when an exec budget is set, and
 *      sockets of denied families.
 *   3. This process: the ptrace supervisor. It follows every descendant, decides traps on
 *      register values only, checks every exec after the fact at PTRACE_EVENT_EXEC through
 *      /proc/PID/exe (resolved by the kernel) and kills a disallowed image before it runs.
 *      PTRACE_O_EXITKILL: if the supervisor dies, the whole tree dies with it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#if !defined(__x86_64__)
#error "jail: only x86_64 is implemented so far (syscall table, registers)"
#endif

#define JAIL_EXIT_SETUP 125 /* the jail could not set up; nothing was run */
#define JAIL_EXIT_EXEC 127  /* the command could not be executed */

/* ------------------------------------------------------------------------------------------ */
/* Landlock (own definitions: distribution headers lag behind the kernel)                      */

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};
struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
struct ll_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)    /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#define LL_SCOPE_SIGNAL (1ULL << 1)    /* ABI 6 */
/* Rights that make sense on a non-directory rule. */
#define LL_FS_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE)

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

/* ------------------------------------------------------------------------------------------ */
/* x86_64 syscall numbers (literal where old headers may lack them)                           */

enum {
    NR_socket = 41, NR_truncate = 76, NR_clone = 56, NR_fork = 57, NR_vfork = 58, NR_execve = 59, NR_kill = 62,
    NR_ptrace = 101, NR_syslog = 103, NR_getppid = 110, NR_uselib = 134, NR_rt_sigqueueinfo = 129,
    NR_vhangup = 153, NR_pivot_root = 155, NR_chroot = 161, NR_acct = 163, NR_settimeofday = 164,
    NR_mount = 165, NR_umount2 = 166, NR_swapon = 167, NR_swapoff = 168, NR_reboot = 169,
    NR_sethostname = 170, NR_setdomainname = 171, NR_iopl = 172, NR_ioperm = 173,
    NR_create_module = 174, NR_init_module = 175, NR_delete_module = 176, NR_get_kernel_syms = 177,
    NR_query_module = 178, NR_quotactl = 179, NR_nfsservctl = 180, NR_tkill = 200,
    NR_lookup_dcookie = 212, NR_clock_settime = 227, NR_tgkill = 234, NR_kexec_load = 246,
    NR_add_key = 248, NR_request_key = 249, NR_keyctl = 250, NR_unshare = 272,
    NR_rt_tgsigqueueinfo = 297, NR_perf_event_open = 298, NR_open_by_handle_at = 304,
    NR_clock_adjtime = 305, NR_setns = 308, NR_process_vm_writev = 311, NR_finit_module = 313,
    NR_seccomp = 317, NR_kexec_file_load = 320, NR_bpf = 321, NR_execveat = 322,
    NR_userfaultfd = 323, NR_pidfd_send_signal = 424, NR_io_uring_setup = 425,
    NR_io_uring_enter = 426, NR_io_uring_register = 427, NR_open_tree = 428, NR_move_mount = 429,
    NR_fsopen = 430, NR_fsconfig = 431, NR_fsmount = 432, NR_fspick = 433, NR_clone3 = 435,
    NR_pidfd_getfd = 438, NR_mount_setattr = 442, NR_quotactl_fd = 443, NR_open_tree_attr = 467,
};
#define X32_SYSCALL_BIT 0x40000000u

/* Calls a kernel never needs: always EPERM, through a trap so that the denial is logged. */
static const struct { int nr; const char *name; } DENIED[] = {
    {NR_ptrace, "ptrace"}, {NR_process_vm_writev, "process_vm_writev"}, {NR_mount, "mount"},
    {NR_umount2, "umount2"}, {NR_pivot_root, "pivot_root"}, {NR_bpf, "bpf"},
    {NR_kexec_load, "kexec_load"}, {NR_kexec_file_load, "kexec_file_load"},
    {NR_init_module, "init_module"}, {NR_finit_module, "finit_module"},
    {NR_delete_module, "delete_module"}, {NR_perf_event_open, "perf_event_open"},
    {NR_userfaultfd, "userfaultfd"}, {NR_io_uring_setup, "io_uring_setup"},
    {NR_io_uring_enter, "io_uring_enter"}, {NR_io_uring_register, "io_uring_register"},
    {NR_unshare, "unshare"}, {NR_setns, "setns"}, {NR_open_tree, "open_tree"},
    {NR_move_mount, "move_mount"}, {NR_fsopen, "fsopen"}, {NR_fsconfig, "fsconfig"},
    {NR_fsmount, "fsmount"}, {NR_fspick, "fspick"}, {NR_mount_setattr, "mount_setattr"},
    {NR_open_tree_attr, "open_tree_attr"}, {NR_pidfd_getfd, "pidfd_getfd"},
    {NR_open_by_handle_at, "open_by_handle_at"}, {NR_reboot, "reboot"}, {NR_swapon, "swapon"},
    {NR_swapoff, "swapoff"}, {NR_iopl, "iopl"}, {NR_ioperm, "ioperm"}, {NR_acct, "acct"},
    {NR_quotactl, "quotactl"}, {NR_quotactl_fd, "quotactl_fd"},
    {NR_lookup_dcookie, "lookup_dcookie"}, {NR_add_key, "add_key"},
    {NR_request_key, "request_key"}, {NR_keyctl, "keyctl"}, {NR_chroot, "chroot"},
    {NR_settimeofday, "settimeofday"}, {NR_clock_settime, "clock_settime"},
    {NR_clock_adjtime, "clock_adjtime"}, {NR_sethostname, "sethostname"},
    {NR_setdomainname, "setdomainname"}, {NR_syslog, "syslog"}, {NR_vhangup, "vhangup"},
    {NR_nfsservctl, "nfsservctl"}, {NR_create_module, "create_module"},
    {NR_get_kernel_syms, "get_kernel_syms"}, {NR_query_module, "query_module"},
    {NR_uselib, "uselib"}, {NR_truncate, "truncate (by path; ftruncate works)"},
};
#define N_DENIED (sizeof DENIED / sizeof DENIED[0])

/* SECCOMP_RET_DATA codes: only a hint (a stacked filter may return its own TRACE data), the
 * supervisor decides on the syscall number and arguments again. */
enum { T_DENY = 1, T_PROC, T_SIGNAL, T_EXEC, T_SOCKET };

#define CLONE_DENY_FLAGS                                                                        \
    (0x00020000u /*NEWNS*/ | 0x02000000u /*NEWCGROUP*/ | 0x04000000u /*NEWUTS*/ |             \
     0x08000000u /*NEWIPC*/ | 0x10000000u /*NEWUSER*/ | 0x20000000u /*NEWPID*/ |              \
     0x40000000u /*NEWNET*/ | 0x00800000u /*UNTRACED*/)
#define CLONE_THREAD_FLAG 0x00010000u

/* ------------------------------------------------------------------------------------------ */
/* Policy                                                                                     */

enum net_mode { NET_OFF, NET_ON, NET_LISTEN };

struct strlist { char **v; size_t n, cap; };

struct policy {
    enum net_mode network;
    long max_procs;   /* live processes in the tree, the first one included */
    long max_threads; /* live tasks (threads of all processes) in the tree */
    long max_execs;   /* successful execs after the first; 0 = unlimited */
    int landlock_required;
    int exec_any;
    struct strlist exec_allow; /* resolved: exact files, or directories ending in '/' */
    struct strlist writable;
};

static struct policy P = {
    .network = NET_OFF, .max_procs = 256, .max_threads = 4096, .max_execs = 0,
    .landlock_required = 1,
};
static int verbose;

static void sl_push(struct strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) abort();
    }
    l->v[l->n++] = strdup(s);
}

/* A minimal JSON reader for the flat policy object: strings, integers, booleans, arrays of
 * strings; keys starting with '_' (comments) and "image" are read and ignored (any value). */
struct jp { const char *s; size_t i, n; const char *err; };

static void jp_ws(struct jp *p) {
    while (p->i < p->n && isspace((unsigned char)p->s[p->i])) p->i++;
}
static int jp_eat(struct jp *p, char c) {
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == c) { p->i++; return 1; }
    return 0;
}
static char *jp_string(struct jp *p) {
    jp_ws(p);
    if (p->i >= p->n || p->s[p->i] != '"') { p->err = "string expected"; return NULL; }
    p->i++;
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    while (p->i < p->n && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if ((unsigned char)c < 0x20) { p->err = "control character in string"; free(out); return NULL; }
        if (c == '\\') {
            if (p->i >= p->n) break;
            char e = p->s[p->i++];
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    if (p->i >= p->n || !isxdigit((unsigned char)p->s[p->i])) { p->err = "bad \\u escape"; free(out); return NULL; }
                    char h = p->s[p->i++];
                    v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
                }
                if (v == 0 || v > 0x7f) { p->err = "only ASCII \\u escapes are supported"; free(out); return NULL; }
                c = (char)v;
                break;
            }
            default: p->err = "bad escape"; free(out); return NULL;
            }
        }
        if (len + 2 > cap) out = realloc(out, cap *= 2);
        out[len++] = c;
    }
    if (p->i >= p->n) { p->err = "unterminated string"; free(out); return NULL; }
    p->i++;
    out[len] = 0;
    return out;
}
static int jp_lit(struct jp *p, const char *lit) {
    jp_ws(p);
    size_t l = strlen(lit);
    if (p->n - p->i >= l && !strncmp(p->s + p->i, lit, l)) { p->i += l; return 1; }
    return 0;
}
static int jp_int(struct jp *p, long *out) {
    jp_ws(p);
    char *end;
    errno = 0;
    long v = strtol(p->s + p->i, &end, 10);
    if (end == p->s + p->i || errno || *end == '.' || *end == 'e' || *end == 'E') { p->err = "integer expected"; return 0; }
    p->i = (size_t)(end - p->s);
    *out = v;
    return 1;
}
static int jp_bool(struct jp *p, int *out) {
    if (jp_lit(p, "true")) { *out = 1; return 1; }
    if (jp_lit(p, "false")) { *out = 0; return 1; }
    p->err = "true or false expected";
    return 0;
}
static int jp_skip(struct jp *p, int depth) {
    if (depth > 32) { p->err = "nested too deep"; return 0; }
    jp_ws(p);
    if (p->i >= p->n) { p->err = "value expected"; return 0; }
    char c = p->s[p->i];
    if (c == '"') { char *s = jp_string(p); free(s); return s != NULL; }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p->i++;
        if (jp_eat(p, close)) return 1;
        do {
            if (c == '{') { char *k = jp_string(p); if (!k) return 0; free(k); if (!jp_eat(p, ':')) { p->err = "':' expected"; return 0; } }
            if (!jp_skip(p, depth + 1)) return 0;
        } while (jp_eat(p, ','));
        if (!jp_eat(p, close)) { p->err = "',' or end of container expected"; return 0; }
        return 1;
    }
    if (jp_lit(p, "true") || jp_lit(p, "false") || jp_lit(p, "null")) return 1;
    char *end;
    strtod(p->s + p->i, &end);
    if (end == p->s + p->i) { p->err = "value expected"; return 0; }
    p->i = (size_t)(end - p->s);
    return 1;
}
static int jp_strarray(struct jp *p, struct strlist *l) {
    if (!jp_eat(p, '[')) { p->err = "array expected"; return 0; }
    if (jp_eat(p, ']')) return 1;
    do {
        char *s = jp_string(p);
        if (!s) return 0;
        sl_push(l, s);
        free(s);
    } while (jp_eat(p, ','));
    if (!jp_eat(p, ']')) { p->err = "',' or ']' expected"; return 0; }
    return 1;
}

static struct strlist raw_exec, raw_writable;

static int parse_policy(const char *text, size_t n, char *why, size_t whylen) {
    struct jp p = {text, 0, n, NULL};
    long version = 0;
    if (!jp_eat(&p, '{')) { snprintf(why, whylen, "a JSON object expected"); return 0; }
    if (!jp_eat(&p, '}')) {
        do {
            char *key = jp_string(&p);
            if (!key) goto fail;
            if (!jp_eat(&p, ':')) { p.err = "':' expected"; free(key); goto fail; }
            int ok = 1;
            if (!strcmp(key, "version")) ok = jp_int(&p, &version);
            else if (!strcmp(key, "max_procs")) ok = jp_int(&p, &P.max_procs);
            else if (!strcmp(key, "max_threads")) ok = jp_int(&p, &P.max_threads);
            else if (!strcmp(key, "max_execs")) ok = jp_int(&p, &P.max_execs);
            else if (!strcmp(key, "exec_allow")) ok = jp_strarray(&p, &raw_exec);
            else if (!strcmp(key, "writable")) ok = jp_strarray(&p, &raw_writable);
            else if (!strcmp(key, "network")) {
                int b;
                jp_ws(&p);
                if (p.i < p.n && p.s[p.i] == '"') {
                    char *v = jp_string(&p);
                    if (!v) ok = 0;
                    else if (!strcmp(v, "on")) P.network = NET_ON;
                    else if (!strcmp(v, "off")) P.network = NET_OFF;
                    else if (!strcmp(v, "listen")) P.network = NET_LISTEN;
                    else { p.err = "network must be \"on\", \"off\" or \"listen\""; ok = 0; }
                    free(v);
                } else if ((ok = jp_bool(&p, &b))) P.network = b ? NET_ON : NET_OFF;
            } else if (!strcmp(key, "landlock")) {
                char *v = jp_string(&p);
                if (!v) ok = 0;
                else if (!strcmp(v, "required")) P.landlock_required = 1;
                else if (!strcmp(v, "best_effort")) P.landlock_required = 0;
                else { p.err = "landlock must be \"required\" or \"best_effort\""; ok = 0; }
                free(v);
            } else if (key[0] == '_' || !strcmp(key, "image")) ok = jp_skip(&p, 0);
            else {
                snprintf(why, whylen, "unknown key \"%s\" (the jail refuses policies it does not understand)", key);
                free(key);
                return 0;
            }
            if (!ok) {
                snprintf(why, whylen, "key \"%s\": %s at offset %zu", key, p.err ? p.err : "bad value", p.i);
                free(key);
                return 0;
            }
            free(key);
        } while (jp_eat(&p, ','));
        if (!jp_eat(&p, '}')) { p.err = "',' or '}' expected"; goto fail; }
    }
    jp_ws(&p);
    if (p.i != p.n) { p.err = "trailing characters"; goto fail; }
    if (version != 1) { snprintf(why, whylen, "\"version\": 1 expected"); return 0; }
    if (P.max_procs < 1 || P.max_threads < 1 || P.max_execs < 0) {
        snprintf(why, whylen, "max_procs and max_threads must be >= 1, max_execs >= 0");
        return 0;
    }
    return 1;
fail:
    snprintf(why, whylen, "%s at offset %zu", p.err ? p.err : "syntax error", p.i);
    return 0;
}

/* Resolve the allow-list once: entries are compared with /proc/PID/exe, which the kernel
 * gives fully resolved. "dir/" matches anything beneath dir; entries that do not exist in
 * this image are dropped (per-image defaults may list tools an image lacks). */
static void resolve_exec_allow(void) {
    for (size_t k = 0; k < raw_exec.n; k++) {
        const char *e = raw_exec.v[k];
        if (!strcmp(e, "*")) { P.exec_any = 1; continue; }
        if (e[0] != '/') { fprintf(stderr, "jail: exec_allow entry \"%s\" is not absolute, ignored\n", e); continue; }
        char buf[PATH_MAX];
        if (!realpath(e, buf)) {
            if (verbose) fprintf(stderr, "jail: exec_allow entry %s does not exist here, skipped\n", e);
            continue;
        }
        size_t l = strlen(e);
        if (e[l - 1] == '/') {
            size_t bl = strlen(buf);
            if (bl + 2 > sizeof buf) continue;
            if (buf[bl - 1] != '/') { buf[bl] = '/'; buf[bl + 1] = 0; }
        }
        sl_push(&P.exec_allow, buf);
    }
}

static int exec_allowed(const char *exe) {
    if (P.exec_any) return 1;
    for (size_t k = 0; k < P.exec_allow.n; k++) {
        const char *a = P.exec_allow.v[k];
        size_t l = strlen(a);
        if (a[l - 1] == '/' ? !strncmp(exe, a, l) : !strcmp(exe, a)) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Logging: one line per denial on fd 2, rate-limited so that a loop cannot flood the output.  */

static pid_t jail_pid, root_pid;
static pid_t jlog_subject; /* the process a denial is about, while it is handled */

static void jlog(const char *fmt, ...) {
    static time_t window;
    static int in_window;
    static unsigned long suppressed;
    time_t now = time(NULL);
    if (now != window) { window = now; in_window = 0; }
    if (++in_window > 20) { suppressed++; return; }
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "jail: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 64) n = (int)sizeof buf - 64;
    if (suppressed) {
        n += snprintf(buf + n, sizeof buf - (size_t)n, " (%lu more lines suppressed)", suppressed);
        suppressed = 0;
    }
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    /* The same line to the offending process's own stderr: for a kernel's subprocess that is
       the kernel's captured stream, so the user sees the denial in the cell's output. */
    if (jlog_subject > 0) {
        char path[64];
        struct stat mine, theirs;
        snprintf(path, sizeof path, "/proc/%d/fd/2", (int)jlog_subject);
        if (stat(path, &theirs) == 0 && fstat(2, &mine) == 0 &&
            !(mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino)) {
            int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            if (fd >= 0) {
                w = write(fd, buf, (size_t)n);
                close(fd);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Landlock                                                                                    */

static int landlock_abi(void) {
    long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

struct ll_state { int abi; int fd; int signal_scope; int net; };

/* Build the ruleset in the supervisor (errors are reported before anything runs); the child
 * applies it with landlock_restrict_self just before exec. */
static int landlock_prepare(struct ll_state *st) {
    st->abi = landlock_abi();
    st->fd = -1;
    st->signal_scope = st->net = 0;
    if (st->abi < 1) return 0;
    uint64_t fs = LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR |
                  LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO |
                  LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM;
    if (st->abi >= 2) fs |= LL_FS_REFER;
    /* LL_FS_TRUNCATE (ABI 3) is deliberately not handled: it makes Landlock walk the path of
     * every open, read-only ones included (about +25% per open here). O_TRUNC and creat()
     * need WRITE_FILE/MAKE_REG anyway, ftruncate() needs a writable fd, and truncate(2) by
     * path is refused by the seccomp layer instead. */
    struct ll_ruleset_attr attr = {.handled_access_fs = fs};
    size_t size = 8;
    if (P.network == NET_LISTEN && st->abi >= 4) {
        attr.handled_access_net = LL_NET_CONNECT_TCP; /* no rule: no TCP connect at all */
        st->net = 1;
        size = 16;
    }
    if (st->abi >= 6) {
        attr.scoped = LL_SCOPE_SIGNAL;
        st->signal_scope = 1;
        size = 24;
    }
    int fd = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0) { perror("jail: landlock_create_ruleset"); return -1; }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    for (size_t k = 0; k < raw_writable.n; k++) {
        const char *path = raw_writable.v[k];
        int pfd = open(path, O_PATH | O_CLOEXEC);
        if (pfd < 0) {
            if (verbose) fprintf(stderr, "jail: writable %s does not exist here, skipped\n", path);
            continue;
        }
        struct stat sb;
        fstat(pfd, &sb);
        struct ll_path_beneath_attr pb = {.allowed_access = S_ISDIR(sb.st_mode) ? fs : (fs & LL_FS_FILE_RIGHTS), .parent_fd = pfd};
        if (syscall(__NR_landlock_add_rule, fd, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
            fprintf(stderr, "jail: landlock_add_rule %s: %s\n", path, strerror(errno));
            close(pfd);
            close(fd);
            return -1;
        }
        close(pfd);
    }
    st->fd = fd;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* seccomp-bpf                                                                                 */

struct prog { struct sock_filter *f; size_t n, cap; };
static void emit(struct prog *p, struct sock_filter ins) {
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->f = realloc(p->f, p->cap * sizeof *p->f);
        if (!p->f) abort();
    }
    p->f[p->n++] = ins;
}
static void append(struct prog *p, const struct prog *q) {
    for (size_t k = 0; k < q->n; k++) emit(p, q->f[k]);
}
#define STMT(c, k) ((struct sock_filter)BPF_STMT((c), (k)))
#define JUMP(c, k, t, f) ((struct sock_filter)BPF_JUMP((c), (k), (t), (f)))
#define RET(v) STMT(BPF_RET | BPF_K, (v))
#define LD_NR STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG_LO(i) STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define TRACE(code) (SECCOMP_RET_TRACE | (code))
#define ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

/* What BPF does for one syscall number; the block assumes A = nr and always returns. */
struct rule { int nr; struct prog block; };

static void rule_ret(struct rule *r, int nr, uint32_t ret) {
    r->nr = nr;
    memset(&r->block, 0, sizeof r->block);
    emit(&r->block, RET(ret));
}

/* Binary search over sorted rules: every untouched syscall costs about log2(n) compares. */
static void gen_tree(struct prog *out, struct rule *r, size_t n) {
    if (n <= 3) {
        for (size_t k = 0; k < n; k++) {
            emit(out, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)r[k].nr, 0, (uint8_t)r[k].block.n));
            append(out, &r[k].block);
        }
        emit(out, RET(SECCOMP_RET_ALLOW));
        return;
    }
    size_t mid = n / 2;
    struct prog left = {0}, right = {0};
    gen_tree(&left, r, mid);
    gen_tree(&right, r + mid, n - mid);
    if (left.n > 255) { fprintf(stderr, "jail: BPF tree too large\n"); exit(JAIL_EXIT_SETUP); }
    emit(out, JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)r[mid].nr, (uint8_t)left.n, 0));
    append(out, &left);
    append(out, &right);
    free(left.f);
    free(right.f);
}

static int rule_cmp(const void *a, const void *b) {
    return ((const struct rule *)a)->nr - ((const struct rule *)b)->nr;
}

static struct prog build_filter(void) {
    struct rule rules[128];
    size_t n = 0;
    for (size_t k = 0; k < N_DENIED; k++) rule_ret(&rules[n++], DENIED[k].nr, TRACE(T_DENY));
    rule_ret(&rules[n++], NR_clone3, ERRNO(ENOSYS)); /* glibc falls back to clone (flags in a register) */
    rule_ret(&rules[n++], NR_fork, TRACE(T_PROC));
    rule_ret(&rules[n++], NR_vfork, TRACE(T_PROC));
    static const int sig_nrs[] = {NR_kill, NR_tkill, NR_tgkill, NR_rt_sigqueueinfo, NR_rt_tgsigqueueinfo, NR_pidfd_send_signal};
    for (size_t k = 0; k < sizeof sig_nrs / sizeof *sig_nrs; k++) rule_ret(&rules[n++], sig_nrs[k], TRACE(T_SIGNAL));
    if (P.max_execs > 0) {
        rule_ret(&rules[n++], NR_execve, TRACE(T_EXEC));
        rule_ret(&rules[n++], NR_execveat, TRACE(T_EXEC));
    }
    /* clone: threads pass untouched; namespaces and CLONE_UNTRACED are denied; processes trap. */
    {
        struct rule *r = &rules[n++];
        memset(r, 0, sizeof *r);
        r->nr = NR_clone;
        struct prog *b = &r->block;
        emit(b, LD_ARG_LO(0));
        emit(b, JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_DENY_FLAGS, 0, 1));
        emit(b, RET(TRACE(T_DENY)));
        emit(b, JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD_FLAG, 0, 1));
        emit(b, RET(SECCOMP_RET_ALLOW));
        emit(b, RET(TRACE(T_PROC)));
    }
    /* socket: by family (and type for IPv4/IPv6); only denials trap. */
    {
        struct rule *r = &rules[n++];
        memset(r, 0, sizeof *r);
        r->nr = NR_socket;
        struct prog *b = &r->block;
        emit(b, LD_ARG_LO(0));
        if (P.network == NET_OFF) {
            emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_PACKET, 3, 0));
            emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 2, 0));
            emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 1, 0));
            emit(b, RET(SECCOMP_RET_ALLOW));
            emit(b, RET(TRACE(T_SOCKET)));
        } else {
            emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_PACKET, 6, 0));
            emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 1, 0));
            emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 3));
            emit(b, LD_ARG_LO(1));
            emit(b, STMT(BPF_ALU | BPF_AND | BPF_K, 0xf));
            if (P.network == NET_ON) emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_RAW, 1, 0));
            else emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_STREAM, 0, 1));
            emit(b, RET(SECCOMP_RET_ALLOW));
            emit(b, RET(TRACE(T_SOCKET)));
        }
    }
    /* seccomp(): no new listener (a USER_NOTIF filter would take precedence over our TRACE). */
    {
        struct rule *r = &rules[n++];
        memset(r, 0, sizeof *r);
        r->nr = NR_seccomp;
        struct prog *b = &r->block;
        emit(b, LD_ARG_LO(0));
        emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_SET_MODE_FILTER, 0, 2));
        emit(b, LD_ARG_LO(1));
        emit(b, JUMP(BPF_JMP | BPF_JSET | BPF_K, SECCOMP_FILTER_FLAG_NEW_LISTENER, 1, 0));
        emit(b, RET(SECCOMP_RET_ALLOW));
        emit(b, RET(TRACE(T_DENY)));
    }
    qsort(rules, n, sizeof *rules, rule_cmp);

    struct prog p = {0};
    emit(&p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    emit(&p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
    emit(&p, RET(SECCOMP_RET_KILL_PROCESS));
    emit(&p, LD_NR);
    emit(&p, JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1));
    emit(&p, RET(SECCOMP_RET_KILL_PROCESS));
    gen_tree(&p, rules, n);
    for (size_t k = 0; k < n; k++) free(rules[k].block.f);
    return p;
}

/* The supervisor's own reading of a trapped call, from the registers only. */
static const char *denied_name(long nr) {
    for (size_t k = 0; k < N_DENIED; k++)
        if (DENIED[k].nr == nr) return DENIED[k].name;
    return NULL;
}
static int socket_denied(long domain, long type) {
    domain = (int)domain;
    if (domain == AF_PACKET) return 1;
    if (domain != AF_INET && domain != AF_INET6) return 0;
    int t = (int)type & 0xf;
    if (P.network == NET_OFF) return 1;
    if (P.network == NET_ON) return t == SOCK_RAW;
    return t != SOCK_STREAM;
}
static const char *family_name(long d) {
    switch ((int)d) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_PACKET: return "AF_PACKET";
    default: return "?";
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The tree: every task we trace, keyed by tid (open addressing, backward-shift deletion).      */

struct task {
    pid_t tid, tgid;
    uint8_t used, started, leader, pending_proc, pending_exec;
};
static struct task *T;
static size_t T_cap, T_n;
static long n_procs, n_pending_proc, n_pending_exec, n_execs;

static size_t th(pid_t tid) { return ((uint32_t)tid * 2654435761u) & (T_cap - 1); }

static struct task *t_find(pid_t tid) {
    if (!T_cap) return NULL;
    for (size_t i = th(tid);; i = (i + 1) & (T_cap - 1)) {
        if (!T[i].used) return NULL;
        if (T[i].tid == tid) return &T[i];
    }
}
static struct task *t_add(pid_t tid);
static void t_grow(void) {
    struct task *old = T;
    size_t oc = T_cap;
    T_cap = oc ? oc * 2 : 1024;
    T = calloc(T_cap, sizeof *T);
    if (!T) { fprintf(stderr, "jail: out of memory\n"); exit(JAIL_EXIT_SETUP); }
    T_n = 0;
    for (size_t i = 0; i < oc; i++)
        if (old[i].used) { struct task *t = t_add(old[i].tid); *t = old[i]; }
    free(old);
}
static struct task *t_add(pid_t tid) {
    struct task *t = t_find(tid);
    if (t) return t;
    if ((T_n + 1) * 2 > T_cap) t_grow();
    size_t i = th(tid);
    while (T[i].used) i = (i + 1) & (T_cap - 1);
    memset(&T[i], 0, sizeof T[i]);
    T[i].used = 1;
    T[i].tid = tid;
    T[i].tgid = tid;
    T_n++;
    return &T[i];
}
static void clear_pending(struct task *t) {
    if (t->pending_proc) { t->pending_proc = 0; n_pending_proc--; }
    if (t->pending_exec) { t->pending_exec = 0; n_pending_exec--; }
}
static void t_del(struct task *t) {
    clear_pending(t);
    if (t->leader) n_procs--;
    size_t i = (size_t)(t - T);
    T[i].used = 0;
    T_n--;
    for (size_t j = (i + 1) & (T_cap - 1); T[j].used; j = (j + 1) & (T_cap - 1)) {
        size_t h = th(T[j].tid);
        /* move T[j] into the hole i if its home slot h is not in (i, j] */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            T[i] = T[j];
            T[j].used = 0;
            i = j;
        }
    }
}
static void set_leader(struct task *t, pid_t tgid) {
    t->tgid = tgid;
    int leader = tgid == t->tid;
    if (leader && !t->leader) n_procs++;
    if (!leader && t->leader) n_procs--;
    t->leader = (uint8_t)leader;
}

/* Tgid of a task from /proc (used only when a new task stops before its creator's event). */
static pid_t proc_tgid(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tid;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) return tid;
    buf[r] = 0;
    char *p = strstr(buf, "\nTgid:");
    return p ? (pid_t)atoi(p + 6) : tid;
}

/* A zombie not yet reaped by its parent is still part of the tree for kill() purposes. */
static int zombie_of_tree(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) return 0;
    buf[r] = 0;
    char *p = strrchr(buf, ')');
    char state;
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2) return 0;
    if (state != 'Z') return 0;
    struct task *t = t_find(ppid);
    return t && t->leader;
}

static int in_tree_process(pid_t pid) {
    if (pid <= 0 || pid == jail_pid) return 0;
    struct task *t = t_find(pid);
    if (t) return t->leader;
    return zombie_of_tree(pid);
}
static int in_tree_task(pid_t tid) {
    if (tid <= 0 || tid == jail_pid) return 0;
    return t_find(tid) != NULL || zombie_of_tree(tid);
}

/* Every member of process group pgid is in the tree (and there is at least one). */
static int group_in_tree(pid_t pgid) {
    if (pgid <= 1) return 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int ok = 1, seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        pid_t pid = atoi(e->d_name);
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0) continue;
        buf[r] = 0;
        char *p = strrchr(buf, ')');
        char state;
        int ppid, pg;
        if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pg) != 3) continue;
        if (pg != pgid) continue;
        seen = 1;
        if (!in_tree_process(pid)) { ok = 0; break; }
    }
    closedir(d);
    return ok && seen;
}

/* ------------------------------------------------------------------------------------------ */
/* The supervisor                                                                              */

static int signal_scope_active;

static void deny(pid_t tid, struct user_regs_struct *regs, int err) {
    regs->orig_rax = (unsigned long long)-1; /* skip the call */
    regs->rax = (unsigned long long)(long)-err;
    if (ptrace(PTRACE_SETREGS, tid, 0, regs) < 0) {
        /* Cannot deny: never let it run. */
        jlog("cannot deny a call of %d (%s), killing it", tid, strerror(errno));
        kill(tid, SIGKILL);
    }
}

static void on_seccomp(struct task *t) {
    pid_t tid = t->tid;
    struct user_regs_struct regs;
    jlog_subject = t->tgid;
    clear_pending(t); /* a previous fork/exec of this task is over, one way or the other */
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return; /* gone (killed meanwhile) */
    long nr = (long)regs.orig_rax;
    unsigned long a0 = regs.rdi, a1 = regs.rsi, a2 = regs.rdx;
    const char *name = denied_name(nr);
    if (name) {
        jlog("denied %s (pid %d)", name, t->tgid);
        deny(tid, &regs, EPERM);
        return;
    }
    switch (nr) {
    case NR_clone:
        if ((uint32_t)a0 & CLONE_DENY_FLAGS) {
            jlog("denied clone with namespace or untraced flags 0x%lx (pid %d)", a0, t->tgid);
            deny(tid, &regs, EPERM);
            return;
        }
        if ((uint32_t)a0 & CLONE_THREAD_FLAG) return; /* a thread (trapped by someone else's filter) */
        /* fallthrough */
    case NR_fork:
    case NR_vfork:
        if (n_procs + n_pending_proc >= P.max_procs) {
            jlog("denied fork (process budget %ld reached, pid %d)", P.max_procs, t->tgid);
            deny(tid, &regs, EPERM);
            return;
        }
        t->pending_proc = 1;
        n_pending_proc++;
        return;
    case NR_execve:
    case NR_execveat:
        if (P.max_execs > 0 && n_execs + n_pending_exec >= P.max_execs + 1) { /* the first exec is free */
            jlog("denied execve (exec budget %ld reached, pid %d)", P.max_execs, t->tgid);
            deny(tid, &regs, EPERM);
            return;
        }
        t->pending_exec = 1;
        n_pending_exec++;
        return;
    case NR_socket:
        if (socket_denied((long)a0, (long)a1)) {
            jlog("denied socket %s%s (pid %d)", family_name((long)a0),
                 ((int)a1 & 0xf) == SOCK_RAW ? " SOCK_RAW" : "", t->tgid);
            deny(tid, &regs, EPERM);
        }
        return;
    case NR_seccomp:
        if (a0 == SECCOMP_SET_MODE_FILTER && (a1 & SECCOMP_FILTER_FLAG_NEW_LISTENER)) {
            jlog("denied seccomp filter with a new listener (pid %d)", t->tgid);
            deny(tid, &regs, EPERM);
        }
        return;
    case NR_kill:
    case NR_rt_sigqueueinfo: {
        pid_t pid = (pid_t)a0;
        int ok;
        if (pid > 0) ok = in_tree_process(pid);
        else if (pid == 0) ok = group_in_tree(getpgid(t->tgid));
        else if (pid == -1) ok = 0;
        else ok = group_in_tree(-pid);
        if (!ok) {
            jlog("denied %s %d (signal %d, not in the sandbox; pid %d)", nr == NR_kill ? "kill" : "rt_sigqueueinfo",
                 pid, (int)a1, t->tgid);
            deny(tid, &regs, EPERM);
        }
        return;
    }
    case NR_tkill:
        if (!in_tree_task((pid_t)a0)) {
            jlog("denied tkill %d (signal %d, not in the sandbox; pid %d)", (pid_t)a0, (int)a1, t->tgid);
            deny(tid, &regs, EPERM);
        }
        return;
    case NR_tgkill:
    case NR_rt_tgsigqueueinfo:
        if (!in_tree_process((pid_t)a0) || !in_tree_task((pid_t)a1)) {
            jlog("denied tgkill %d/%d (signal %d, not in the sandbox; pid %d)", (pid_t)a0, (pid_t)a1, (int)a2, t->tgid);
            deny(tid, &regs, EPERM);
        }
        return;
    case NR_pidfd_send_signal:
        /* The target is a file descriptor: nothing the registers can tell. Landlock's signal
         * scope (ABI >= 6) makes the kernel refuse targets outside the sandbox; without it, deny. */
        if (!signal_scope_active) {
            jlog("denied pidfd_send_signal (needs Landlock signal scoping; pid %d)", t->tgid);
            deny(tid, &regs, EPERM);
        }
        return;
    default:
        return; /* a trap from a filter stacked by the program itself, for a call we allow */
    }
}

static void on_new_task(pid_t parent_tid, int event, pid_t child) {
    struct task *pt = t_find(parent_tid);
    jlog_subject = pt ? pt->tgid : 0;
    int process = event != PTRACE_EVENT_CLONE || (pt && pt->pending_proc);
    if (pt && process) clear_pending(pt);
    struct task *c = t_add(child);
    pt = t_find(parent_tid); /* t_add may have moved entries */
    if (process) set_leader(c, child);
    else set_leader(c, pt ? pt->tgid : proc_tgid(child));
    if (!c->leader && (long)T_n > P.max_threads) {
        jlog("killed pid %d: thread budget %ld exceeded", c->tgid, P.max_threads);
        kill(c->tgid, SIGKILL);
    }
}

static void on_exec(struct task *t) {
    unsigned long former = 0;
    ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &former);
    pid_t pid = t->tid;
    jlog_subject = pid;
    if ((pid_t)former != pid) { /* a thread exec'ed: it took over the leader's pid */
        struct task *f = t_find((pid_t)former);
        if (f) t_del(f);
        if (!(t = t_find(pid))) return;
    }
    clear_pending(t);
    set_leader(t, pid);
    char path[64], exe[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n < 0) {
        jlog("denied execve (cannot read %s: %s), killed pid %d", path, strerror(errno), pid);
        kill(pid, SIGKILL);
        return;
    }
    exe[n] = 0;
    if (!exec_allowed(exe)) {
        jlog("denied execve %s (not on the allow-list), killed pid %d", exe, pid);
        kill(pid, SIGKILL);
        return;
    }
    n_execs++;
    if (P.max_execs > 0 && n_execs > P.max_execs + 1) { /* the first exec (the command) is free */
        jlog("denied execve %s (exec budget %ld exceeded), killed pid %d", exe, P.max_execs, pid);
        kill(pid, SIGKILL);
    }
}

static void forward_signal(int sig) {
    if (root_pid > 0 && kill(-root_pid, sig) < 0) kill(root_pid, sig);
}

static int supervise(void) {
    for (;;) {
        int status;
        pid_t tid = waitpid(-1, &status, __WALL);
        if (tid < 0) {
            if (errno == EINTR) continue;
            if (errno == ECHILD) return JAIL_EXIT_SETUP;
            perror("jail: waitpid");
            return JAIL_EXIT_SETUP;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            struct task *t = t_find(tid);
            if (t) t_del(t);
            if (tid == root_pid) {
                /* The kernel is gone: so is everything it left behind (also via EXITKILL). */
                for (size_t i = 0; i < T_cap; i++)
                    if (T[i].used) kill(T[i].tid, SIGKILL);
                if (WIFEXITED(status)) return WEXITSTATUS(status);
                return 128 + WTERMSIG(status);
            }
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int sig = WSTOPSIG(status);
        int event = (status >> 16) & 0xff;
        struct task *t = t_find(tid);
        if (!t) {
            /* A new task whose creator's event has not been seen yet. */
            t = t_add(tid);
            set_leader(t, proc_tgid(tid));
        }
        int inject = 0;
        switch (event) {
        case 0: /* signal-delivery-stop: pass the signal on untouched */
            inject = sig;
            break;
        case PTRACE_EVENT_SECCOMP:
            on_seccomp(t);
            break;
        case PTRACE_EVENT_FORK:
        case PTRACE_EVENT_VFORK:
        case PTRACE_EVENT_CLONE: {
            unsigned long child = 0;
            if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child) on_new_task(tid, event, (pid_t)child);
            break;
        }
        case PTRACE_EVENT_EXEC:
            on_exec(t);
            break;
        case PTRACE_EVENT_STOP:
            if (!t->started) { t->started = 1; break; } /* the automatic attach stop */
            if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
                ptrace(PTRACE_LISTEN, tid, 0, 0); /* group-stop: stay stopped, as without us */
                continue;
            }
            break;
        default:
            break;
        }
        if ((t = t_find(tid))) t->started = 1;
        ptrace(PTRACE_CONT, tid, 0, (void *)(long)inject);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Starting the command                                                                        */

static int install_filter(struct prog *p) {
    struct sock_fprog fp = {.len = (unsigned short)p->n, .filter = p->f};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp);
}

static void child_fail(int fd, const char *what) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "jail: %s: %s\n", what, strerror(errno));
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
    _exit(JAIL_EXIT_SETUP);
}

static int run(char **argv) {
    struct ll_state ll;
    int lr = landlock_prepare(&ll);
    if (lr < 0) return JAIL_EXIT_SETUP;
    if (lr == 0 && P.landlock_required) {
        fprintf(stderr, "jail: Landlock is not available (ABI %d) and the policy requires it\n", ll.abi);
        return JAIL_EXIT_SETUP;
    }
    if (lr == 0) jlog("Landlock unavailable: writes are NOT confined (policy says best_effort)");
    if (P.network == NET_LISTEN && !ll.net) {
        fprintf(stderr, "jail: network \"listen\" needs Landlock ABI >= 4 (TCP connect control), have %d\n", ll.abi);
        return JAIL_EXIT_SETUP;
    }
    signal_scope_active = ll.signal_scope;
    struct prog filter = build_filter();

    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) { perror("jail: pipe"); return JAIL_EXIT_SETUP; }
    int fg = isatty(0) && tcgetpgrp(0) == getpgrp();
    jail_pid = getpid();
    signal(SIGTTOU, SIG_IGN);

    pid_t pid = fork();
    if (pid < 0) { perror("jail: fork"); return JAIL_EXIT_SETUP; }
    if (pid == 0) {
        close(go[1]);
        setpgid(0, 0); /* the kernel's own process group: interrupts go there */
        if (fg) tcsetpgrp(0, getpid());
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != jail_pid) _exit(JAIL_EXIT_SETUP);
        signal(SIGTTOU, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(2, "no_new_privs");
        if (ll.fd >= 0 && syscall(__NR_landlock_restrict_self, ll.fd, 0) < 0) child_fail(2, "landlock_restrict_self");
        char c;
        if (read(go[0], &c, 1) != 1) _exit(JAIL_EXIT_SETUP); /* the supervisor is attached */
        if (install_filter(&filter) < 0) child_fail(2, "seccomp");
        execvp(argv[0], argv);
        char buf[PATH_MAX + 64];
        int n = snprintf(buf, sizeof buf, "jail: cannot execute %s: %s\n", argv[0], strerror(errno));
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
        _exit(JAIL_EXIT_EXEC);
    }
    close(go[0]);
    if (ll.fd >= 0) close(ll.fd);
    setpgid(pid, pid);
    root_pid = pid;
    long opts = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)opts) < 0) {
        fprintf(stderr, "jail: ptrace(PTRACE_SEIZE): %s\n", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return JAIL_EXIT_SETUP;
    }
    /* From here on no process of the tree can read or attach to the supervisor. */
    prctl(PR_SET_DUMPABLE, 0);
    struct task *t = t_add(pid);
    set_leader(t, pid);
    t->started = 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM};
    for (size_t k = 0; k < sizeof fwd / sizeof *fwd; k++) sigaction(fwd[k], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* orphans of the tree are reaped here */

    if (write(go[1], "g", 1) != 1) { kill(pid, SIGKILL); return JAIL_EXIT_SETUP; }
    close(go[1]);
    return supervise();
}

/* ------------------------------------------------------------------------------------------ */
/* --check                                                                                     */

/* Does a seccomp RET_TRACE reach us through ptrace, and can we make the call fail? */
static int check_trace(void) {
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) return 0;
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        close(go[1]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(2);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(3);
        struct sock_filter f[] = {
            LD_NR,
            JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_getppid, 0, 1),
            RET(TRACE(1)),
            RET(SECCOMP_RET_ALLOW),
        };
        struct sock_fprog fp = {.len = 4, .filter = f};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0) _exit(4);
        long r = syscall(SYS_getppid);
        _exit(r == -1 && errno == EPERM ? 0 : 5);
    }
    close(go[0]);
    int ok = ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)(PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL)) == 0;
    if (write(go[1], "g", 1) != 1) ok = 0;
    close(go[1]);
    int status, trapped = 0;
    while (waitpid(pid, &status, __WALL) == pid) {
        if (WIFEXITED(status) || WIFSIGNALED(status)) break;
        if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_SECCOMP) {
            struct user_regs_struct regs;
            if (ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0) {
                regs.orig_rax = (unsigned long long)-1;
                regs.rax = (unsigned long long)(long)-EPERM;
                if (ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0) trapped = 1;
            }
        }
        ptrace(PTRACE_CONT, pid, 0, 0);
    }
    return ok && trapped && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int check(void) {
    int abi = landlock_abi();
    int seccomp_filter = prctl(PR_GET_SECCOMP) >= 0;
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    int trace = check_trace();
    const char *missing[4];
    int nm = 0;
    if (!trace) missing[nm++] = "ptrace+seccomp RET_TRACE";
    if (!seccomp_filter) missing[nm++] = "seccomp";
    if (abi < 1 && P.landlock_required) missing[nm++] = "landlock";
    printf("{\"arch\": \"x86_64\", \"landlock_abi\": %d, \"landlock\": %s, \"landlock_net\": %s, "
           "\"landlock_signal_scope\": %s, \"seccomp_filter\": %s, \"seccomp_trace\": %s, \"ptrace\": %s, "
           "\"no_new_privs\": %s, \"uid\": %d, \"ok\": %s, \"missing\": [",
           abi, abi >= 1 ? "true" : "false", abi >= 4 ? "true" : "false", abi >= 6 ? "true" : "false",
           seccomp_filter ? "true" : "false", trace ? "true" : "false", trace ? "true" : "false",
           nnp == 1 ? "true" : "false", (int)getuid(), nm ? "false" : "true");
    for (int k = 0; k < nm; k++) printf("%s\"%s\"", k ? ", " : "", missing[k]);
    printf("]}\n");
    return nm ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: jail --policy FILE [--verbose] -- CMD [ARG...]\n"
            "       jail --check [--policy FILE]\n"
            "       jail --print-filter --policy FILE   (BPF instruction count, for debugging)\n");
}

static int load_policy(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { fprintf(stderr, "jail: cannot open policy %s: %s\n", path, strerror(errno)); return 0; }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap = cap ? cap * 2 : 8192);
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) { fprintf(stderr, "jail: reading policy %s: %s\n", path, strerror(errno)); close(fd); return 0; }
        if (r == 0) break;
        len += (size_t)r;
        if (len > (1 << 20)) { fprintf(stderr, "jail: policy %s is too large\n", path); close(fd); return 0; }
    }
    close(fd);
    char why[256];
    int ok = parse_policy(buf, len, why, sizeof why);
    free(buf);
    if (!ok) { fprintf(stderr, "jail: policy %s: %s\n", path, why); return 0; }
    resolve_exec_allow();
    return 1;
}

int main(int argc, char **argv) {
    const char *policy = NULL;
    int do_check = 0, print_filter = 0, i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { i++; break; }
        if (!strcmp(argv[i], "--policy") && i + 1 < argc) policy = argv[++i];
        else if (!strncmp(argv[i], "--policy=", 9)) policy = argv[i] + 9;
        else if (!strcmp(argv[i], "--check")) do_check = 1;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--print-filter")) print_filter = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(); return 0; }
        else { usage(); return JAIL_EXIT_SETUP; }
    }
    if (policy && !load_policy(policy)) return JAIL_EXIT_SETUP;
    if (do_check) return check();
    if (print_filter) {
        struct prog p = build_filter();
        printf("%zu\n", p.n);
        return 0;
    }
    if (!policy || i >= argc) { usage(); return JAIL_EXIT_SETUP; }
    return run(argv + i);
}
