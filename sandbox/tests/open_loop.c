/* N read-only open()+close() of a file (default 100,000). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/etc/hostname";
    long n = argc > 2 ? atol(argv[2]) : 100000;
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) { perror(path); return 1; }
        close(fd);
    }
    return 0;
}
