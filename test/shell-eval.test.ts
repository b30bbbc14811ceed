/**
 * The shell evaluator on entrypoint scripts in the style of official images (database, cache, web
 * server, broker, runtimes): each must resolve to the program it really starts with its Cmd, take
 * only the branches its known values allow, and report a command nobody can know as computed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { scanImage } from '../coordinator/plan/scan.js';
import { embeddedRuntime } from '../coordinator/runtime/embedded.js';
import { DEFAULT_LIMITS } from '../infra/limits.js';
import { gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';
import { type ArgList, evaluateScript, knownArgs, loadShellParser, type ShellEvaluation, type ShellInput } from '../coordinator/plan/shell-eval.js';
import { wrappedCommand } from '../coordinator/plan/wrappers.js';

const ENTRYPOINT = '/usr/local/bin/docker-entrypoint.sh';

interface Case {
  readonly name: string;
  readonly script: string;
  readonly cmd: readonly string[];
  readonly env?: readonly string[];
  /** Files `.`/`source` may read. */
  readonly files?: Readonly<Record<string, string>>;
  /** Command lines (exact; null: an unknown argument) that must be among the runs. */
  readonly runs: readonly (readonly (string | null)[])[];
  /** Programs that must not run (a branch the known values exclude). */
  readonly absent?: readonly string[];
  /** How many computed commands (default 0). */
  readonly computed?: number;
}

/** An evaluator input with nothing known and nothing to source, but what a test gives. */
function bare(source: string, given: Partial<ShellInput> = {}): ShellInput {
  return { source, name: 'x', arg0: 'x', args: knownArgs([]), env: [], findSourced: () => null, sourced: new Map(), timeoutMs: 10_000, maxCallDepth: 32, ...given };
}

function evaluate(script: string, cmd: readonly string[], env: readonly string[] = [], files: Readonly<Record<string, string>> = {}): ShellEvaluation {
  return evaluateScript({
    source: script,
    name: ENTRYPOINT,
    arg0: ENTRYPOINT,
    args: knownArgs(cmd),
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env],
    findSourced: (name) => (name.startsWith('/') ? (name in files ? name : null) : Object.keys(files).find((path) => path.endsWith(`/${name}`)) ?? null),
    sourced: new Map(Object.entries(files)),
    timeoutMs: 10_000,
    maxCallDepth: 32,
  });
}

function programs(result: ShellEvaluation): string[] {
  return result.runs.map((run) => run.argv.items[0] as string);
}

function hasRun(result: ShellEvaluation, argv: readonly (string | null)[]): boolean {
  return result.runs.some((run) => !run.argv.more && JSON.stringify(run.argv.items) === JSON.stringify(argv));
}

const CASES: readonly Case[] = [
  {
    name: 'memcached: options-only Cmd, gosu re-exec of "$0", exec "$@"',
    script: `#!/bin/sh
set -eu
drop() { if [ "$(id -u)" = 0 ]; then exec gosu memcache "$0" "$@"; fi; }
case "\${1:-}" in '') set -- memcached ;; -*) set -- memcached "$@" ;; esac
case "$1" in memcached) drop "$@" ;; esac
exec "$@"`,
    cmd: ['-m', '64'],
    runs: [['gosu', 'memcache', ENTRYPOINT, 'memcached', '-m', '64'], ['memcached', '-m', '64'], ['id', '-u']],
  },
  {
    name: 'postgres: bash functions, ${1:0:1} unknown, gosu "$BASH_SOURCE", init only when the data dir is new',
    script: `#!/usr/bin/env bash
set -Eeo pipefail
file_env() {
  local var="$1"; local fileVar="\${var}_FILE"; local def="\${2:-}"
  local val="$def"
  if [ "\${!var:-}" ]; then val="\${!var}"; elif [ "\${!fileVar:-}" ]; then val="$(< "\${!fileVar}")"; fi
  export "$var"="$val"
  unset "$fileVar"
}
docker_setup_env() { file_env 'POSTGRES_PASSWORD'; file_env 'POSTGRES_USER' 'postgres'; : "\${POSTGRES_DB:=$POSTGRES_USER}"; }
docker_temp_server_start() { PGUSER="\${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -w start; }
_pg_want_help() { local arg; for arg; do case "$arg" in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac; done; return 1; }
_main() {
  if [ "\${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
  if [ "$1" = 'postgres' ] && ! _pg_want_help "$@"; then
    docker_setup_env
    mkdir -p "$PGDATA"
    if [ "$(id -u)" = '0' ]; then exec gosu postgres "$BASH_SOURCE" "$@"; fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\\n' "$POSTGRES_PASSWORD"); docker_temp_server_start; fi
  fi
  exec "$@"
}
if ! [ "\${#FUNCNAME[@]}" -ge 2 ]; then _main "$@"; fi`,
    cmd: ['postgres'],
    env: ['PGDATA=/var/lib/postgresql/data'],
    runs: [['gosu', 'postgres', ENTRYPOINT, 'postgres'], ['postgres'], ['mkdir', '-p', '/var/lib/postgresql/data'], ['pg_ctl', '-D', '/var/lib/postgresql/data', '-w', 'start']],
  },
  {
    name: 'postgres: a Cmd that is not postgres skips the setup and runs the command',
    script: `#!/bin/bash
if [ "$1" = 'postgres' ]; then initdb -D /data; exec gosu postgres "$0" "$@"; fi
exec "$@"`,
    cmd: ['psql', '--version'],
    runs: [['psql', '--version']],
    absent: ['initdb', 'gosu'],
  },
  {
    name: 'mysql: mysqld with options prepended, a helper that runs mysqld --verbose --help',
    script: `#!/bin/bash
set -eo pipefail
mysql_get_config() { local conf="$1"; shift; "$@" --verbose --help 2>/dev/null | awk -v conf="$conf" '$1 == conf { print $2; exit }'; }
docker_setup_env() { declare -g DATADIR; DATADIR="$(mysql_get_config 'datadir' "$@")"; }
_main() {
  if [ "\${1:0:1}" = '-' ]; then set -- mysqld "$@"; fi
  if [ "$1" = 'mysqld' ]; then
    docker_setup_env "$@"
    if [ "$(id -u)" = "0" ]; then exec gosu mysql "$BASH_SOURCE" "$@"; fi
  fi
  exec "$@"
}
_main "$@"`,
    cmd: ['mysqld'],
    runs: [['mysqld'], ['gosu', 'mysql', ENTRYPOINT, 'mysqld'], ['mysqld', '--verbose', '--help'], ['awk', '-v', 'conf=datadir', '$1 == conf { print $2; exit }']],
  },
  {
    name: 'mariadb: a case over the first argument with --* options',
    script: `#!/bin/bash
case "$1" in
  --*|-*) set -- mariadbd "$@" ;;
esac
if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  if [ "$(id -u)" = 0 ]; then exec gosu mysql "$0" "$@"; fi
fi
exec "$@"`,
    cmd: ['--port=3307'],
    runs: [['mariadbd', '--port=3307'], ['gosu', 'mysql', ENTRYPOINT, 'mariadbd', '--port=3307']],
  },
  {
    name: 'redis: first argument ending in .conf, find/chown as root',
    script: `#!/bin/sh
set -e
if [ "\${1#-}" != "$1" ] || [ "\${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = 'redis-server' -a "$(id -u)" = '0' ]; then
  find . \\! -user redis -exec chown redis '{}' +
  exec gosu redis "$0" "$@"
fi
um="$(umask)"
exec "$@"`,
    cmd: ['/etc/redis.conf'],
    runs: [['redis-server', '/etc/redis.conf'], ['gosu', 'redis', ENTRYPOINT, 'redis-server', '/etc/redis.conf'], ['find', '.', '!', '-user', 'redis', '-exec', 'chown', 'redis', '{}', '+']],
  },
  {
    name: 'redis: a plain command is run as is',
    script: `#!/bin/sh
if [ "\${1#-}" != "$1" ] || [ "\${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = 'redis-server' ]; then exec gosu redis "$0" "$@"; fi
exec "$@"`,
    cmd: ['redis-cli', 'ping'],
    runs: [['redis-cli', 'ping']],
    absent: ['gosu', 'redis-server'],
  },
  {
    name: 'mongo: numactl when available, a known list of config options',
    script: `#!/bin/bash
set -Eeuo pipefail
if [ "\${1:0:1}" = '-' ]; then set -- mongod "$@"; fi
originalArgOne="$1"
if [[ "$originalArgOne" == mongo* ]] && [ "$(id -u)" = '0' ]; then
  exec gosu mongodb "$BASH_SOURCE" "$@"
fi
numa='numactl --interleave=all'
if $numa true &> /dev/null; then set -- $numa "$@"; fi
exec "$@"`,
    cmd: ['mongod', '--bind_ip_all'],
    runs: [['gosu', 'mongodb', ENTRYPOINT, 'mongod', '--bind_ip_all'], ['numactl', '--interleave=all', 'true'], ['numactl', '--interleave=all', 'mongod', '--bind_ip_all'], ['mongod', '--bind_ip_all']],
  },
  {
    name: 'rabbitmq: rabbitmq-server as rabbitmq, an ENV-selected config file',
    script: `#!/bin/bash
set -eu
if [[ "$1" == rabbitmq* ]] && [ "$(id -u)" = '0' ]; then
  if [ "$1" = 'rabbitmq-server' ]; then find /var/lib/rabbitmq \\! -user rabbitmq -exec chown rabbitmq '{}' +; fi
  exec gosu rabbitmq "$BASH_SOURCE" "$@"
fi
conf="\${RABBITMQ_CONFIG_FILE:-/etc/rabbitmq/rabbitmq.conf}"
if [ ! -f "$conf" ]; then touch "$conf"; fi
exec "$@"`,
    cmd: ['rabbitmq-server'],
    env: ['RABBITMQ_CONFIG_FILE=/etc/rabbitmq/custom.conf'],
    runs: [['gosu', 'rabbitmq', ENTRYPOINT, 'rabbitmq-server'], ['touch', '/etc/rabbitmq/custom.conf'], ['rabbitmq-server']],
  },
  {
    name: 'nginx: quiet logs, entrypoint.d scripts found with find | while read (computed)',
    script: `#!/bin/sh
set -e
entrypoint_log() { if [ -z "\${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then echo "$@"; fi; }
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
  if /usr/bin/find "/docker-entrypoint.d/" -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read v; then
    find "/docker-entrypoint.d/" -follow -type f -print | sort -V | while read -r f; do
      case "$f" in
        *.sh) if [ -x "$f" ]; then "$f"; fi ;;
        *) entrypoint_log "ignoring $f" ;;
      esac
    done
  fi
fi
exec "$@"`,
    cmd: ['nginx', '-g', 'daemon off;'],
    runs: [['nginx', '-g', 'daemon off;'], ['sort', '-V']],
    computed: 1,
  },
  {
    name: 'nginx: with another Cmd the entrypoint.d scripts are not run',
    script: `#!/bin/sh
if [ "$1" = "nginx" ]; then find /docker-entrypoint.d/ -type f | while read -r f; do "$f"; done; fi
exec "$@"`,
    cmd: ['nginx-debug', '-g', 'daemon off;'],
    runs: [['nginx-debug', '-g', 'daemon off;']],
    absent: ['find'],
  },
  {
    name: 'httpd (apache2-foreground): rm a pid file, exec httpd -DFOREGROUND "$@"',
    script: `#!/bin/sh
set -e
rm -f /usr/local/apache2/logs/httpd.pid
exec httpd -DFOREGROUND "$@"`,
    cmd: [],
    runs: [['rm', '-f', '/usr/local/apache2/logs/httpd.pid'], ['httpd', '-DFOREGROUND']],
  },
  {
    name: 'php-fpm: first argument an option → php-fpm prepended',
    script: `#!/bin/sh
set -e
if [ "\${1#-}" != "$1" ]; then
  set -- php-fpm "$@"
fi
exec "$@"`,
    cmd: ['-F'],
    runs: [['php-fpm', '-F']],
  },
  {
    name: 'node: a first argument that is not a command runs under node',
    script: `#!/bin/sh
set -e
if [ "\${1#-}" != "\${1}" ] || [ -z "$(command -v "\${1}")" ] || { [ -f "\${1}" ] && ! [ -x "\${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"`,
    cmd: ['server.js'],
    runs: [['node', 'server.js'], ['server.js']],
  },
  {
    name: 'python: gunicorn under tini with an ENV port',
    script: `#!/bin/sh
set -e
: "\${PORT:=8000}"
if [ "$1" = 'serve' ]; then
  shift
  set -- gunicorn --bind "0.0.0.0:$PORT" app:app "$@"
fi
exec tini -- "$@"`,
    cmd: ['serve', '--workers', '2'],
    env: ['PORT=9000'],
    runs: [['tini', '--', 'gunicorn', '--bind', '0.0.0.0:9000', 'app:app', '--workers', '2']],
  },
  {
    name: 'ruby/rails: bundle exec after removing a stale server.pid',
    script: `#!/bin/bash
set -e
rm -f /app/tmp/pids/server.pid
if [ "$1" = "rails" ] && [ "$2" = "server" ]; then bundle exec rails db:prepare; fi
exec bundle exec "$@"`,
    cmd: ['rails', 'server', '-b', '0.0.0.0'],
    runs: [['rm', '-f', '/app/tmp/pids/server.pid'], ['bundle', 'exec', 'rails', 'db:prepare'], ['bundle', 'exec', 'rails', 'server', '-b', '0.0.0.0']],
  },
  {
    name: 'elasticsearch: options only, su-exec, a while loop over known arguments',
    script: `#!/bin/bash
set -e
if [[ "$1" == -* ]]; then set -- elasticsearch "$@"; fi
es_opts=''
while [ $# -gt 0 ]; do
  case "$1" in
    -E*) es_opts="$es_opts $1" ;;
  esac
  shift
done
exec su-exec elasticsearch /usr/share/elasticsearch/bin/elasticsearch $es_opts`,
    cmd: ['-Ediscovery.type=single-node', '-Enode.name=a'],
    runs: [['su-exec', 'elasticsearch', '/usr/share/elasticsearch/bin/elasticsearch', '-Ediscovery.type=single-node', '-Enode.name=a']],
  },
  {
    name: 'zookeeper: writes its config when absent, runs zkServer.sh start-foreground',
    script: `#!/bin/bash
set -e
if [[ "$1" = 'zkServer.sh' && "$(id -u)" = '0' ]]; then
  chown -R zookeeper "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
  exec gosu zookeeper "$0" "$@"
fi
if [[ ! -f "$ZOO_CONF_DIR/zoo.cfg" ]]; then
  CONFIG="$ZOO_CONF_DIR/zoo.cfg"
  echo "dataDir=$ZOO_DATA_DIR" >> "$CONFIG"
  for server in $ZOO_SERVERS; do echo "$server" >> "$CONFIG"; done
fi
exec "$@"`,
    cmd: ['zkServer.sh', 'start-foreground'],
    env: ['ZOO_CONF_DIR=/conf', 'ZOO_DATA_DIR=/data', 'ZOO_DATA_LOG_DIR=/datalog', 'ZOO_LOG_DIR=/logs'],
    runs: [['chown', '-R', 'zookeeper', '/data', '/datalog', '/logs'], ['gosu', 'zookeeper', ENTRYPOINT, 'zkServer.sh', 'start-foreground'], ['zkServer.sh', 'start-foreground']],
  },
  {
    name: 'cassandra: sed over a known list of config keys',
    script: `#!/bin/bash
set -e
if [ "\${1:0:1}" = '-' ]; then set -- cassandra -f "$@"; fi
if [ "$1" = 'cassandra' ] && [ "$(id -u)" = '0' ]; then exec gosu cassandra "$BASH_SOURCE" "$@"; fi
_sed-in-place() { local filename="$1"; shift; local tempFile; tempFile="$(mktemp)"; sed "$@" "$filename" > "$tempFile"; cat "$tempFile" > "$filename"; rm "$tempFile"; }
if [ "$1" = 'cassandra' ]; then
  for yaml in broadcast_address cluster_name endpoint_snitch; do
    var="CASSANDRA_\${yaml^^}"
    _sed-in-place "$CASSANDRA_CONF/cassandra.yaml" -r 's/^(# )?('"$yaml"':).*/\\2 x/'
  done
fi
exec "$@"`,
    cmd: ['cassandra', '-f'],
    env: ['CASSANDRA_CONF=/etc/cassandra'],
    runs: [['gosu', 'cassandra', ENTRYPOINT, 'cassandra', '-f'], ['mktemp'], ['sed', '-r', 's/^(# )?(cluster_name:).*/\\2 x/', '/etc/cassandra/cassandra.yaml'], ['cassandra', '-f']],
  },
  {
    name: 'haproxy: a config file as first argument',
    script: `#!/bin/sh
set -e
if [ "\${1#-}" != "$1" ]; then set -- haproxy "$@"; fi
if [ "$1" = 'haproxy' ]; then
  shift
  set -- haproxy -W -db "$@"
fi
exec "$@"`,
    cmd: ['haproxy', '-f', '/usr/local/etc/haproxy/haproxy.cfg'],
    runs: [['haproxy', '-W', '-db', '-f', '/usr/local/etc/haproxy/haproxy.cfg']],
  },
  {
    name: 'traefik (busybox-style): a sub-command or a flag selects traefik',
    script: `#!/bin/sh
set -e
if [ "\${1#-}" != "$1" ]; then
  set -- traefik "$@"
fi
if traefik "$1" --help >/dev/null 2>&1; then
  set -- traefik "$@"
else
  echo "= '$1' is not a Traefik command: assuming shell execution." 1>&2
fi
exec "$@"`,
    cmd: ['--api.insecure=true'],
    runs: [['traefik', '--api.insecure=true'], ['traefik', 'traefik', '--api.insecure=true'], ['traefik', 'traefik', '--help']],
  },
  {
    name: 'consul: agent sub-command gets its data dir, dumb-init in front',
    script: `#!/usr/bin/dumb-init /bin/sh
set -e
CONSUL_DATA_DIR=/consul/data
if [ "\${1:0:1}" = '-' ]; then set -- consul "$@"; fi
if [ "$1" = 'agent' ]; then
  shift
  set -- consul agent -data-dir="$CONSUL_DATA_DIR" "$@"
elif consul --help "$1" 2>&1 | grep -q "consul $1"; then
  set -- consul "$@"
fi
if [ "$1" = 'consul' -a -z "\${CONSUL_DISABLE_PERM_MGMT+x}" ]; then
  if [ "$(stat -c %u "$CONSUL_DATA_DIR")" != "$(id -u consul)" ]; then chown consul:consul "$CONSUL_DATA_DIR"; fi
  set -- su-exec consul:consul "$@"
fi
exec "$@"`,
    cmd: ['agent', '-dev'],
    runs: [['su-exec', 'consul:consul', 'consul', 'agent', '-data-dir=/consul/data', '-dev'], ['consul', 'agent', '-data-dir=/consul/data', '-dev'], ['stat', '-c', '%u', '/consul/data']],
  },
  {
    name: 'vault: setcap when asked, server -dev by default',
    script: `#!/usr/bin/dumb-init /bin/sh
set -e
VAULT_CONFIG_DIR=/vault/config
if [ "\${1:0:1}" = '-' ]; then set -- vault "$@"; fi
if [ "$1" = 'server' ]; then
  shift
  set -- vault server -config="$VAULT_CONFIG_DIR" -dev-root-token-id="$VAULT_DEV_ROOT_TOKEN_ID" "$@"
fi
if [ "$1" = 'vault' ]; then
  if [ -z "$SKIP_SETCAP" ]; then setcap cap_ipc_lock=+ep $(readlink -f /bin/vault); fi
  if [ "$(id -u)" = '0' ]; then set -- su-exec vault "$@"; fi
fi
exec "$@"`,
    cmd: ['server', '-dev'],
    runs: [['su-exec', 'vault', 'vault', 'server', '-config=/vault/config', null, '-dev'], ['vault', 'server', '-config=/vault/config', null, '-dev'], ['readlink', '-f', '/bin/vault']],
  },
  {
    name: 'tomcat/java: catalina.sh run through a sourced setenv file',
    script: `#!/bin/sh
. /usr/local/tomcat/bin/setenv.sh
if [ "$1" = 'run' ]; then exec "$CATALINA_HOME/bin/catalina.sh" run; fi
exec "$@"`,
    cmd: ['run'],
    files: { '/usr/local/tomcat/bin/setenv.sh': 'CATALINA_HOME=/usr/local/tomcat\nJAVA_OPTS="-Xmx512m"\n' },
    runs: [['/usr/local/tomcat/bin/catalina.sh', 'run']],
    absent: ['run'],
  },
  {
    name: 'jenkins: tini in front, a JAVA_OPTS word list split unquoted',
    script: `#!/bin/bash -e
: "\${JENKINS_WAR:="/usr/share/jenkins/jenkins.war"}"
if [[ $# -lt 1 ]] || [[ "$1" == "--"* ]]; then
  java_opts_array=()
  exec java -Duser.home="$JENKINS_HOME" $JAVA_OPTS -jar "\${JENKINS_WAR}" "$@"
fi
exec "$@"`,
    cmd: [],
    env: ['JENKINS_HOME=/var/jenkins_home', 'JAVA_OPTS=-Xmx1g -Djava.awt.headless=true'],
    // JENKINS_WAR may come from outside (`docker run -e`), so only its default is not enough to know it.
    runs: [['java', '-Duser.home=/var/jenkins_home', '-Xmx1g', '-Djava.awt.headless=true', '-jar', null]],
  },
  {
    name: 'wordpress (apache): a sourced function library and a heredoc',
    script: `#!/usr/bin/env bash
set -Eeuo pipefail
source /usr/local/bin/lib.sh
if [[ "$1" == apache2* ]] || [ "$1" = 'php-fpm' ]; then
  uid="$(id -u)"
  if [ ! -e index.php ]; then
    tar --create --file - --directory /usr/src/wordpress . | tar --extract --file -
    cat > wp-config.php <<EOF
<?php // $(date +%s)
EOF
  fi
  log_msg "ready"
fi
exec "$@"`,
    cmd: ['apache2-foreground'],
    files: { '/usr/local/bin/lib.sh': 'log_msg() { printf "%s\\n" "$*" | logger -t wordpress; }\n' },
    runs: [['apache2-foreground'], ['tar', '--create', '--file', '-', '--directory', '/usr/src/wordpress', '.'], ['tar', '--extract', '--file', '-'], ['cat'], ['date', '+%s'], ['logger', '-t', 'wordpress'], ['id', '-u']],
  },
  {
    name: 'grafana: env wrapper and a for loop over a known list of plugins',
    script: `#!/bin/bash -e
PLUGINS="grafana-clock-panel grafana-piechart-panel"
for plugin in $PLUGINS; do
  grafana-cli --pluginsDir "\${GF_PATHS_PLUGINS}" plugins install "$plugin"
done
exec env GF_PATHS_DATA=/var/lib/grafana grafana server --homepath=/usr/share/grafana "$@"`,
    cmd: ['cfg:default.log.mode=console'],
    env: ['GF_PATHS_PLUGINS=/var/lib/grafana/plugins'],
    runs: [
      ['grafana-cli', '--pluginsDir', '/var/lib/grafana/plugins', 'plugins', 'install', 'grafana-clock-panel'],
      ['grafana-cli', '--pluginsDir', '/var/lib/grafana/plugins', 'plugins', 'install', 'grafana-piechart-panel'],
      ['env', 'GF_PATHS_DATA=/var/lib/grafana', 'grafana', 'server', '--homepath=/usr/share/grafana', 'cfg:default.log.mode=console'],
    ],
  },
  {
    name: 'influxdb: a sub-command chosen by case with a default',
    script: `#!/bin/bash
set -eo pipefail
main() {
  local cmd="\${1:-influxd}"
  case "$cmd" in
    influxd) shift || true; exec influxd "$@" ;;
    setup) exec influx setup --force ;;
    *) exec "$@" ;;
  esac
}
main "$@"`,
    cmd: ['influxd', '--reporting-disabled'],
    runs: [['influxd', '--reporting-disabled']],
    absent: ['influx'],
  },
  {
    name: 'a command from outside the image (a variable no one sets) is computed',
    script: `#!/bin/sh
if [ -n "$START_COMMAND" ]; then exec $START_COMMAND; fi
exec "$@"`,
    cmd: ['server'],
    runs: [['server']],
    computed: 1,
  },
  {
    name: 'eval of a known string and a trap handler',
    script: `#!/bin/sh
trap 'rm -f /tmp/lock' EXIT
cmd="touch /tmp/lock"
eval "$cmd"
exec "$@"`,
    cmd: ['worker'],
    runs: [['rm', '-f', '/tmp/lock'], ['touch', '/tmp/lock'], ['worker']],
  },
];

describe('shell evaluation of entrypoint scripts', () => {
  before(loadShellParser);

  test('the table has at least 25 scripts', () => {
    assert.ok(CASES.length >= 25, `${CASES.length} cases`);
  });

  for (const testCase of CASES) {
    test(testCase.name, () => {
      const result = evaluate(testCase.script, testCase.cmd, testCase.env, testCase.files);
      for (const argv of testCase.runs) {
        assert.ok(hasRun(result, argv), `expected ${JSON.stringify(argv)} among ${JSON.stringify(result.runs.map((run) => run.argv))}`);
      }
      for (const program of testCase.absent ?? []) assert.ok(!programs(result).includes(program), `${program} must not run: ${JSON.stringify(programs(result))}`);
      assert.equal(result.computed.length, testCase.computed ?? 0, `computed: ${JSON.stringify(result.computed)}`);
      assert.deepEqual(result.wanted, []);
    });
  }

  test('a changed Cmd changes what the script runs where it branches on it', () => {
    const script = `#!/bin/sh
case "$1" in
  server) exec gosu app /usr/bin/app-server --port 80 ;;
  worker) exec /usr/bin/app-worker ;;
  -*) exec /usr/bin/app-server "$@" ;;
esac
exec "$@"`;
    const server = evaluate(script, ['server']);
    const worker = evaluate(script, ['worker']);
    const options = evaluate(script, ['--debug']);
    const other = evaluate(script, ['bash']);
    assert.deepEqual(programs(server), ['gosu']);
    assert.deepEqual(programs(worker), ['/usr/bin/app-worker']);
    assert.ok(hasRun(options, ['/usr/bin/app-server', '--debug']));
    assert.deepEqual(programs(options), ['/usr/bin/app-server']);
    assert.deepEqual(programs(other), ['bash']);
  });

  test('a condition on the run time takes both branches', () => {
    const result = evaluate(`if [ "$(id -u)" = 0 ]; then exec gosu app "$0" "$@"; fi\nexec "$@"`, ['app']);
    assert.ok(hasRun(result, ['gosu', 'app', ENTRYPOINT, 'app']));
    assert.ok(hasRun(result, ['app']));
  });

  test('unknown arguments stay unknown: exec "$@" with an unknown list is computed', () => {
    const result = evaluateScript(bare('exec "$@"', { args: { items: [], more: true } }));
    assert.equal(result.runs.length, 0);
    assert.equal(result.computed.length, 1);
  });

  test('a sourced file not read yet is asked for, and a self-sourcing file stops at the call depth', () => {
    const first = evaluateScript(bare('. /etc/app/env.sh\nexec "$APP"', { findSourced: (name) => name }));
    assert.deepEqual(first.wanted, ['/etc/app/env.sh']);
    const loop = evaluateScript(bare('. /etc/loop.sh', { findSourced: (name) => name, sourced: new Map([['/etc/loop.sh', 'date\n. /etc/loop.sh\n']]), maxCallDepth: 8 }));
    assert.ok(loop.computed.some((text) => text.includes('maxShellCallDepth')), JSON.stringify(loop.computed));
  });

  test('a script that never ends its loops is stopped at its deadline', () => {
    // 2^30 calls of nested functions, each within maxCallDepth.
    const body = Array.from({ length: 30 }, (_, i) => `f${i}() { f${i + 1} "$@"; f${i + 1} "$@"; }`).join('\n');
    assert.throws(
      () =>
        evaluateScript(bare(`${body}\nf0 a`, { timeoutMs: 200 })),
      /shellParseTimeoutMs/,
    );
  });
});

describe('what a script leaves its programs', () => {
  before(loadShellParser);

  test('PATH and LD_LIBRARY_PATH at each command, and the variables the script assigns', () => {
    const result = evaluate(`export PATH="/opt/app/bin:$PATH"\nLD_LIBRARY_PATH=/opt/app/lib app-setup\nMODE=worker\nexec app`, [], ['MODE=server']);
    const setup = result.runs.find((run) => run.argv.items[0] === 'app-setup')!;
    const app = result.runs.find((run) => run.argv.items[0] === 'app')!;
    assert.equal(setup.searchPaths.PATH, '/opt/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    assert.equal(setup.searchPaths.LD_LIBRARY_PATH, '/opt/app/lib');
    assert.equal(app.searchPaths.LD_LIBRARY_PATH, undefined, 'not set by the script: inherited');
    assert.equal(app.searchPaths.PATH, setup.searchPaths.PATH);
    assert.deepEqual(result.assigned, ['MODE', 'PATH']);
    const computed = evaluate('PATH="$(cat /etc/path)"\nexec app', []);
    assert.equal(computed.runs.find((run) => run.argv.items[0] === 'app')!.searchPaths.PATH, null);
  });

  test('the planner looks programs up in the PATH the script set, and the child script does not see the ENV value the parent replaced', async () => {
    const work = await tempDir('dockergate-shell-env-');
    try {
      const stub = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(60)]);
      const layout = path.join(work, 'layout');
      await writeOciLayout(layout, {
        layers: [
          await gzipLayer([
            { name: 'bin/sh', content: stub, mode: 0o755 },
            { name: 'usr/bin/app', content: stub, mode: 0o755 },
            { name: 'opt/app/bin/app', content: '#!/bin/sh\ncase "$MODE" in server) exec /usr/bin/serve ;; worker) exec /usr/bin/work ;; esac\n', mode: 0o755 },
            { name: 'usr/bin/serve', content: stub, mode: 0o755 },
            { name: 'usr/bin/work', content: stub, mode: 0o755 },
            { name: 'entry.sh', content: '#!/bin/sh\nexport PATH="/opt/app/bin:$PATH"\nexport MODE=worker\nexec app\n', mode: 0o755 },
          ]),
        ],
        config: { Entrypoint: ['/entry.sh'], Env: ['PATH=/usr/bin:/bin', 'MODE=server'] },
      });
      const runtime = embeddedRuntime(DEFAULT_LIMITS, path.join(work, 'cache'));
      try {
        const result = await scanImage(runtime, `oci:${layout}`, { source: { platform: { os: 'linux', architecture: 'amd64' }, insecure: false } });
        const programs = result.programs.map((program) => program.path);
        assert.ok(programs.includes('/opt/app/bin/app'), programs.join(', '));
        assert.ok(!programs.includes('/usr/bin/app'), programs.join(', '));
        // MODE is the script's, not the image's: both branches of the child's case may run.
        assert.ok(programs.includes('/usr/bin/work') && programs.includes('/usr/bin/serve'), programs.join(', '));
      } finally {
        await runtime.close();
      }
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
});

describe('wrappers as data', () => {
  const wrapped = (name: string, args: readonly string[]): unknown => wrappedCommand(name, knownArgs(args));
  const argv = (items: readonly (string | null)[], more = false): { argv: ArgList } => ({ argv: { items, more } });

  test('each wrapper is followed to the command it runs, past its options', () => {
    assert.deepEqual(wrapped('gosu', ['memcache', 'memcached', '-m', '64']), argv(['memcached', '-m', '64']));
    assert.deepEqual(wrapped('su-exec', ['app:app', '/app/run']), argv(['/app/run']));
    assert.deepEqual(wrapped('env', ['-i', 'A=1', '-u', 'HOME', 'B=2', 'prog', 'x']), argv(['prog', 'x']));
    assert.deepEqual(wrapped('setpriv', ['--reuid=1000', '--regid', '1000', '--init-groups', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('runuser', ['-u', 'app', '--', 'prog', '-x']), argv(['prog', '-x']));
    assert.deepEqual(wrapped('runuser', ['app', '-c', 'prog -x']), { shell: 'prog -x' });
    assert.deepEqual(wrapped('su', ['-s', '/bin/sh', 'app', '-c', 'exec prog']), { shell: 'exec prog' });
    assert.deepEqual(wrapped('chroot', ['--userspec=1:1', '/', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('tini', ['-s', '-p', 'SIGTERM', '--', 'prog', '--flag']), argv(['prog', '--flag']));
    assert.deepEqual(wrapped('dumb-init', ['--rewrite', '15:2', '--single-child', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('nice', ['-n', '10', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('nice', ['-10', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('timeout', ['-k', '5', '--signal=TERM', '30s', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('stdbuf', ['-oL', '-e', '0', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('numactl', ['--interleave=all', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('numactl', ['-N', '0', '-m', '0', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('taskset', ['-c', '0-3', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('s6-setuidgid', ['app', 'prog']), argv(['prog']));
    assert.deepEqual(wrapped('chpst', ['-u', 'app', 'prog']), argv(['prog']));
    // `#!/usr/bin/env -S bash -e` gives env one argument, which it splits.
    assert.deepEqual(wrapped('env', ['-S bash -e', '/app/run.sh', 'x']), argv(['bash', '-e', '/app/run.sh', 'x']));
    assert.deepEqual(wrapped('env', ['--split-string=python3 -u', 'app.py']), argv(['python3', '-u', 'app.py']));
  });

  test('no command, or one that is not known', () => {
    assert.equal(wrapped('env', []), undefined);
    assert.equal(wrapped('env', ['A=1']), undefined);
    assert.equal(wrapped('taskset', ['-p', '1']), undefined);
    assert.equal(wrapped('su', ['app']), undefined);
    assert.equal(wrapped('memcached', ['-m', '64']), undefined);
    assert.deepEqual(wrapped('chroot', ['/srv/jail', '/bin/app']), { unknown: 'chroot runs its command in another root (/srv/jail), where its programs are not looked up' });
    assert.deepEqual(wrapped('env', ['-S', 'cmd "a b"']), { unknown: 'the string env -S splits is not known' });
    assert.deepEqual(wrappedCommand('gosu', { items: [null, 'prog'], more: false }), { unknown: 'an argument of gosu is not known' });
    assert.deepEqual(wrappedCommand('gosu', { items: ['app'], more: true }), { unknown: 'the command gosu runs is not known' });
  });
});
