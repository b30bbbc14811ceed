/* static-hello: a statically linked (glibc) C program for the dockergate corpus.
 * Does a little of everything a small CLI does: uname, time, a worker thread, a
 * temporary file written, read back and removed, random bytes, a short sleep.
 * Exits 0 only if every step worked. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
	fprintf(stderr, "static-hello: %s: %s\n", what, strerror(errno));
	return 1;
}

static void *sum_worker(void *arg) {
	unsigned long n = *(unsigned long *)arg, s = 0;
	for (unsigned long i = 1; i <= n; i++) s += i;
	*(unsigned long *)arg = s;
	return NULL;
}

int main(void) {
	struct utsname u;
	if (uname(&u) != 0) return fail("uname");

	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now) != 0) return fail("clock_gettime");

	unsigned long n = 1000;
	pthread_t t;
	if ((errno = pthread_create(&t, NULL, sum_worker, &n)) != 0) return fail("pthread_create");
	if ((errno = pthread_join(t, NULL)) != 0) return fail("pthread_join");
	if (n != 500500UL) { fprintf(stderr, "static-hello: thread sum %lu\n", n); return 1; }

	unsigned char rnd[16];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return fail("getrandom");

	/* The image has no /tmp: make a scratch directory in the container's writable layer. */
	const char *dir = "/scratch";
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) return fail("mkdir");
	char path[64];
	snprintf(path, sizeof path, "%s/file-%d", dir, (int)getpid());
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) return fail("open");
	const char msg[] = "dockergate static corpus\n";
	if (write(fd, msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1)) return fail("write");
	char back[sizeof msg] = {0};
	if (pread(fd, back, sizeof msg - 1, 0) != (ssize_t)(sizeof msg - 1)) return fail("pread");
	if (memcmp(back, msg, sizeof msg - 1) != 0) { fprintf(stderr, "static-hello: read back differs\n"); return 1; }
	struct stat st;
	if (fstat(fd, &st) != 0) return fail("fstat");
	close(fd);
	if (unlink(path) != 0) return fail("unlink");

	struct timespec nap = {0, 10 * 1000 * 1000};
	nanosleep(&nap, NULL);

	printf("static-hello: %s %s %s, pid %d, sum %lu, %lld bytes written, random %02x%02x%02x%02x\n",
	       u.sysname, u.release, u.machine, (int)getpid(), n, (long long)st.st_size, rnd[0], rnd[1], rnd[2], rnd[3]);
	return 0;
}
