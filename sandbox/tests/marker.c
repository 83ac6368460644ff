/* Creates the file named by argv[1] and prints RAN: proof that this image ran at all. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1) {
        int fd = open(argv[1], O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) close(fd);
    }
    puts("RAN");
    return 0;
}
