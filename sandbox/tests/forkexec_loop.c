/* N x (fork, exec PROG, wait) (default 500 x /bin/true). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 500;
    const char *prog = argc > 2 ? argv[2] : "/bin/true";
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) { execl(prog, prog, (char *)NULL); _exit(127); }
        int st;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "child failed: %d\n", st); return 1; }
    }
    return 0;
}
