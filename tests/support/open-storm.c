// Opens and closes one file N times: the open storm of the file family's kernel test and of
// bench/file. With a third argument FILES, FILE is a directory holding files named 0 to
// FILES-1, and open i is of file i % FILES (bench/file's storm over many distinct files).
// Compiled by tests/support/open-storm.ts with the C compiler setup installs.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, i, files = 0;
	char path[4096];

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: open-storm FILE COUNT | open-storm DIR COUNT FILES\n");
		return 2;
	}
	n = atol(argv[2]);
	if (argc == 4)
		files = atol(argv[3]);
	for (i = 0; i < n; i++) {
		const char *name = argv[1];
		int fd;

		if (files > 0) {
			snprintf(path, sizeof(path), "%s/%ld", argv[1], i % files);
			name = path;
		}
		fd = open(name, O_RDONLY);
		if (fd < 0) {
			perror(name);
			return 1;
		}
		close(fd);
	}
	return 0;
}
