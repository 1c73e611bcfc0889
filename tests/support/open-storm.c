// Opens and closes one file N times: the open storm of the file family's kernel test and of
// bench/file. Compiled by tests/support/open-storm.ts with the C compiler setup installs.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, i;

	if (argc != 3) {
		fprintf(stderr, "usage: open-storm FILE COUNT\n");
		return 2;
	}
	n = atol(argv[2]);
	for (i = 0; i < n; i++) {
		int fd = open(argv[1], O_RDONLY);

		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		close(fd);
	}
	return 0;
}
