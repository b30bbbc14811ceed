/**
 * The benchmark corpus: service and CLI images built from Debian packages on
 * `dockergate-test/base:bookworm`, and (the `trixie-*` images) on `dockergate-test/base:trixie`,
 * Debian 13 with glibc 2.41 and musl 1.2.5 (see README.md). Each image lives in
 * `bench/corpus/<name>/` and is tagged `dockergate-corpus/<name>:1` by build.ts.
 *
 * Services listen on 127.0.0.1 only, on ports chosen to avoid the machine's own services
 * (PostgreSQL 5432, MariaDB 3306, Redis 6379, RabbitMQ 5672, NATS 4222, Mosquitto 1883,
 * registry 5000), and run with `--network host`; CLIs run with `--network none`.
 * No two corpus images use the same port, but a port is only free while one container
 * of that image runs: run.ts and trace.ts run one container per image at a time.
 */

/** How to tell that a container works. */
export type SmokeTest =
  /** GET `url` from the host answers 200 (and its body contains `expectBody` when given). */
  | { kind: 'http'; url: string; expectBody?: string }
  /**
   * `argv` run in a second container (`image`, default the same image) with `--network host`
   * and `--entrypoint argv[0]` exits 0 (and its stdout contains `expectStdout` when given).
   */
  | { kind: 'sidecar'; argv: string[]; expectStdout?: string; image?: string }
  /** The container's own run exits 0 within the time limit. */
  | { kind: 'exit0' }
  /** The container is still running `seconds` after it started. */
  | { kind: 'alive'; seconds: number };

export interface CorpusImage {
  /** Directory name under bench/corpus/ and image name under dockergate-corpus/. */
  name: string;
  /** `dockergate-corpus/<name>:1`. */
  tag: string;
  kind: 'service' | 'cli';
  /** docker run extra args, e.g. ['--network','host'] */
  runArgs: string[];
  /** how to tell the service is ready / the CLI succeeded */
  smoke: SmokeTest;
  notes?: string;
  /**
   * Build context directory under bench/corpus/ when the image builds another image's sources
   * (its own Dockerfile in bench/corpus/<name>/ is passed with `-f`).
   */
  context?: string;
}

const HOST_NET = ['--network', 'host'];
const NO_NET = ['--network', 'none'];

function image(name: string, kind: CorpusImage['kind'], runArgs: string[], smoke: SmokeTest, notes: string, context?: string): CorpusImage {
  return { name, tag: `dockergate-corpus/${name}:1`, kind, runArgs, smoke, notes, ...(context ? { context } : {}) };
}

export const CORPUS: CorpusImage[] = [
  image(
    'nginx',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18080/', expectBody: 'hello from nginx' },
    'nginx-light 1.22, `nginx -g "daemon off;"`, master (root) + 2 workers (www-data), STOPSIGNAL SIGQUIT',
  ),
  image(
    'apache2',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18082/', expectBody: 'hello from apache2' },
    'apache2 2.4 mpm_event started by a /bin/sh script (sources envvars, exec apache2 -DFOREGROUND), STOPSIGNAL SIGWINCH',
  ),
  image(
    'postgres',
    'service',
    HOST_NET,
    {
      kind: 'sidecar',
      argv: ['psql', '-h', '127.0.0.1', '-p', '15432', '-U', 'postgres', '-d', 'postgres', '-Atc', 'SELECT 6*7'],
      expectStdout: '42',
    },
    'PostgreSQL 15, cluster made by initdb at build time (trust auth), USER postgres, port 15432, STOPSIGNAL SIGINT',
  ),
  image(
    'redis',
    'service',
    HOST_NET,
    { kind: 'sidecar', argv: ['redis-cli', '-h', '127.0.0.1', '-p', '16379', 'PING'], expectStdout: 'PONG' },
    'redis-server 7.0 as USER redis on port 16379, no RDB/AOF persistence',
  ),
  image(
    'go-http',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18086/', expectBody: 'hello from go-http' },
    'net/http server, Go 1.19, CGO_ENABLED=0 (static, stripped), FROM scratch, USER 65534, graceful stop on SIGTERM',
  ),
  image(
    'python-http',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18083/', expectBody: 'hello from python' },
    '`python3 -m http.server` (Python 3.11) as USER nobody on port 18083; ignores SIGTERM as PID 1',
  ),
  image(
    'memcached-entrypoint',
    'service',
    HOST_NET,
    {
      kind: 'sidecar',
      argv: [
        'bash',
        '-c',
        'exec 3<>/dev/tcp/127.0.0.1/11311; printf "version\\r\\n" >&3; IFS= read -r -t 5 line <&3; printf "%s\\n" "$line"',
      ],
      expectStdout: 'VERSION',
    },
    'ENTRYPOINT docker-entrypoint.sh (/bin/sh: case, functions, gosu re-exec as memcache, exec "$@"), CMD memcached on port 11311',
  ),
  image(
    'busybox-httpd',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18081/cgi-bin/hello', expectBody: 'hello from busybox CGI' },
    'busybox-static alone FROM scratch, `busybox httpd -f` on port 18081; the smoke URL is a CGI shell script (fork + exec of busybox sh)',
  ),
  image(
    'busybox-shell',
    'cli',
    NO_NET,
    { kind: 'exit0' },
    'busybox-static alone FROM scratch, an ash entrypoint script parsing the Cmd (options, then a sub-command) and running applets (mkdir, seq, wc, sha256sum, cut, grep, rm): the Alpine idiom',
  ),
  image(
    'static-c',
    'cli',
    NO_NET,
    { kind: 'exit0' },
    'C program statically linked with glibc (-static -pthread), alone FROM scratch: uname, thread, file I/O, getrandom, nanosleep',
  ),
  image(
    'musl-http',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18085/', expectBody: 'hello from musl-http' },
    'poll()-based HTTP server built with musl-gcc, dynamically linked, FROM scratch with only /lib/ld-musl-x86_64.so.1, USER 65534, port 18085',
  ),
  image(
    'trixie-shell',
    'service',
    NO_NET,
    { kind: 'alive', seconds: 5 },
    'Debian 13 (glibc 2.41): /bin/sh entrypoint script that runs a subshell and its arguments (`sleep 1`) in a loop, forking and waiting for each',
  ),
  image(
    'trixie-forking',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18090/', expectBody: 'hello from trixie-forking' },
    'Debian 13: C HTTP server built with gcc 14 against glibc 2.41, accept + fork per connection + waitpid, USER 65534, port 18090',
  ),
  image(
    'trixie-musl-http',
    'service',
    HOST_NET,
    { kind: 'http', url: 'http://127.0.0.1:18091/', expectBody: 'hello from musl-http' },
    'Debian 13: the musl-http server built with musl 1.2.5, dynamically linked, FROM scratch with only the musl loader, USER 65534, port 18091',
    'musl-http',
  ),
  image(
    'cli-toolbox',
    'cli',
    NO_NET,
    { kind: 'exit0' },
    'bash job: jq 1.6 + sqlite3 3.40 + coreutils + tar/gzip, self-checking',
  ),
  image(
    'cli-git',
    'cli',
    NO_NET,
    { kind: 'exit0' },
    'sh job: git 2.39 init/commit/branch/merge/tag/gc/fsck/archive as USER nobody (HOME=/tmp)',
  ),
  image(
    'cli-openssl',
    'cli',
    NO_NET,
    { kind: 'exit0' },
    'sh job: openssl 3.0 speed -seconds 1, Ed25519 key + self-signed cert + verify, pkeyutl sign/verify, AES-256 round trip',
  ),
];

/** The corpus images named in `names` (all of them when empty); throws on an unknown name. */
export function selectImages(names: readonly string[]): CorpusImage[] {
  if (names.length === 0) return [...CORPUS];
  return names.map((name) => {
    const found = CORPUS.find((entry) => entry.name === name || entry.tag === name);
    if (found === undefined) {
      throw new Error(`unknown corpus image ${JSON.stringify(name)} (known: ${CORPUS.map((entry) => entry.name).join(', ')})`);
    }
    return found;
  });
}
