#define _GNU_SOURCE
/* Try to stack a seccomp filter with a user-notification listener (it would outrank the jail's
 * SECCOMP_RET_TRACE). Prints "listener: OK fd" or "listener: ERRNO"; then a plain filter. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    struct sock_filter f[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog p = {.len = 1, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { perror("no_new_privs"); return 2; }
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &p);
    if (fd >= 0) printf("listener: OK %ld\n", fd);
    else printf("listener: %s\n", strerrorname_np(errno));
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p);
    printf("plain filter: %s\n", r == 0 ? "OK" : strerrorname_np(errno));
    fflush(stdout);
    return 0;
}
