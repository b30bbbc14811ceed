/* trixie-forking: an HTTP/1.0 server that forks one child per connection (accept, fork,
 * waitpid), for the dockergate corpus on Debian 13. Usage: trixie-forking ADDRESS PORT.
 * Every request gets 200 and a short body; SIGTERM or SIGINT ends it cleanly. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static void serve(int client) {
	char request[2048];
	ssize_t n = read(client, request, sizeof request);
	(void)n;
	static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n\r\nhello from trixie-forking\n";
	if (write(client, reply, sizeof reply - 1) < 0) _exit(1);
	close(client);
	_exit(0);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]);
		return 2;
	}
	struct sigaction action = {.sa_handler = on_signal};
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0) return perror("socket"), 1;
	int one = 1;
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) return fprintf(stderr, "bad address %s\n", argv[1]), 2;
	if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0) return perror("bind"), 1;
	if (listen(listener, 16) != 0) return perror("listen"), 1;
	fprintf(stderr, "trixie-forking listening on %s:%s\n", argv[1], argv[2]);
	while (!stopping) {
		int client = accept(listener, NULL, NULL);
		if (client < 0) {
			if (errno == EINTR) continue;
			perror("accept");
			return 1;
		}
		pid_t child = fork();
		if (child == 0) serve(client);
		close(client);
		if (child < 0) perror("fork");
		while (waitpid(-1, NULL, WNOHANG) > 0) {
		}
	}
	while (waitpid(-1, NULL, 0) > 0) {
	}
	return 0;
}
