/* The path-flip race: one thread flips a path buffer between an allowed and a forbidden file
 * (same length) while the other opens it for writing, TRIES times. A supervisor that reads the
 * path and then lets the kernel continue is fooled by this; Landlock is not.
 * usage: race_open ALLOWED_PATH FORBIDDEN_PATH [TRIES]; exit 0 iff FORBIDDEN_PATH never appeared. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[4096];
static char a[4096], b[4096];
static atomic_int stop;

static void *flipper(void *arg) {
    (void)arg;
    size_t n = strlen(a) + 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        memcpy(buf, a, n);
        memcpy(buf, b, n);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || strlen(argv[1]) != strlen(argv[2]) || strlen(argv[1]) >= sizeof a) {
        fprintf(stderr, "usage: race_open ALLOWED FORBIDDEN [TRIES] (same length)\n");
        return 2;
    }
    strcpy(a, argv[1]);
    strcpy(b, argv[2]);
    strcpy(buf, a);
    long tries = argc > 3 ? atol(argv[3]) : 20000;
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    long opened = 0, denied = 0, other = 0, escaped = 0;
    for (long i = 0; i < tries; i++) {
        int fd = open(buf, O_WRONLY | O_CREAT, 0666);
        if (fd >= 0) {
            opened++;
            close(fd);
        } else if (errno == EACCES || errno == EPERM) denied++;
        else other++;
        if (access(b, F_OK) == 0) { escaped++; unlink(b); }
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("tries=%ld opened=%ld denied=%ld other=%ld escaped=%ld\n", tries, opened, denied, other, escaped);
    return escaped ? 1 : 0;
}
