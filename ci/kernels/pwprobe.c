/* The test program run inside the kernel-matrix guest, which has no libc:
 * built with `gcc -static` by matrix.py.
 *
 *   pwprobe plain TAG...           exit 0 at once
 *   pwprobe exit CODE MS TAG       sleep MS milliseconds, then exit(CODE)
 *   pwprobe asuser UID PATH ARG... drop every uid/gid to UID and no
 *                                  supplementary groups, then execv(PATH)
 *
 * Any other first argument exits 0, so copies of this file (the setuid
 * copy, the copies on tmpfs and bind mounts) can be run with any argv.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "exit") == 0) {
		long ms = atol(argv[3]);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0)
			;
		return atoi(argv[2]);
	}
	if (argc >= 4 && strcmp(argv[1], "asuser") == 0) {
		uid_t id = (uid_t)atol(argv[2]);
		if (setgroups(0, NULL) != 0 || setresgid(id, id, id) != 0 ||
		    setresuid(id, id, id) != 0) {
			perror("pwprobe: drop privileges");
			return 126;
		}
		execv(argv[3], argv + 3);
		perror("pwprobe: execv");
		return 127;
	}
	return 0;
}
