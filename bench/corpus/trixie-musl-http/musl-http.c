/* musl-http: a tiny single-process HTTP/1.0 server (poll + accept) for the dockergate
 * corpus, built with musl-gcc. Usage: musl-http ADDRESS PORT. Answers every request
 * with 200 and a short text body; SIGTERM or SIGINT ends it cleanly. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static void serve(int client, unsigned long count) {
	char req[2048];
	size_t have = 0;
	/* Read until the end of the request head (or the buffer is full). */
	while (have < sizeof req - 1) {
		struct pollfd p = {.fd = client, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0) break;
		ssize_t n = recv(client, req + have, sizeof req - 1 - have, 0);
		if (n <= 0) break;
		have += (size_t)n;
		req[have] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
	}
	char body[128];
	int blen = snprintf(body, sizeof body, "hello from musl-http (request %lu, time %ld)\n", count, (long)time(NULL));
	char resp[256];
	int rlen = snprintf(resp, sizeof resp,
	                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
	                    blen, body);
	ssize_t off = 0;
	while (off < rlen) {
		ssize_t n = send(client, resp + off, (size_t)(rlen - off), MSG_NOSIGNAL);
		if (n <= 0) break;
		off += n;
	}
	shutdown(client, SHUT_WR);
	close(client);
}

int main(int argc, char **argv) {
	const char *addr = argc > 1 ? argv[1] : "127.0.0.1";
	int port = argc > 2 ? atoi(argv[2]) : 18085;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) { perror("socket"); return 1; }
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", addr); return 2; }
	if (bind(s, (struct sockaddr *)&sin, sizeof sin) != 0) { perror("bind"); return 1; }
	if (listen(s, 64) != 0) { perror("listen"); return 1; }
	fprintf(stderr, "musl-http: listening on %s:%d\n", addr, port);

	unsigned long count = 0;
	while (!stopping) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		int r = poll(&p, 1, 1000);
		if (r < 0 && errno != EINTR) { perror("poll"); return 1; }
		if (r <= 0) continue;
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) continue;
		serve(c, ++count);
	}
	close(s);
	fprintf(stderr, "musl-http: stopped after %lu requests\n", count);
	return 0;
}
