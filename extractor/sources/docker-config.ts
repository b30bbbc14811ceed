/**
 * Registry credentials from the Docker client's config file (`docker login` writes it):
 * `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Only inline credentials are read
 * (`auths[host].auth` = base64 `user:password`, or `username`/`password`); credential helpers
 * (`credHelpers`, `credsStore`) are external programs that dockergate does not run, so a lookup
 * only reports which helper would have been needed.
 *
 * Secrets never appear in error messages.
 */
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidInputError } from '../../infra/errors.js';
import { MiB } from '../../infra/limits.js';

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

export interface CredentialLookup {
  /** The config file consulted (it may not exist). */
  readonly configPath: string;
  readonly credentials?: RegistryCredentials;
  /** `docker-credential-<name>` that the config delegates this registry to, when it does. */
  readonly helper?: string;
  /** Why an entry exists but gave no credentials (e.g. only an `identitytoken`). */
  readonly note?: string;
}

/** The parts of `config.json` used here, checked field by field. */
export interface DockerConfig {
  readonly auths: Readonly<Record<string, unknown>>;
  readonly credHelpers: Readonly<Record<string, unknown>>;
  readonly credsStore?: string;
}

/** A config file larger than this is refused (real ones are a few KiB). */
const MAX_DOCKER_CONFIG_BYTES = 4 * MiB;

/** Docker Hub's registry API host and the names its credentials are stored under. */
const DOCKER_HUB_HOSTS = ['registry-1.docker.io', 'index.docker.io', 'docker.io'];
const DOCKER_HUB_LEGACY_KEY = 'https://index.docker.io/v1/';

export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG
    ? path.join(env.DOCKER_CONFIG, 'config.json')
    : path.join(os.homedir(), '.docker', 'config.json');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads and checks a Docker config file; a missing file is `null` (no credentials). */
export async function readDockerConfig(configPath: string): Promise<DockerConfig | null> {
  let text: string;
  try {
    const handle = await open(configPath, 'r');
    try {
      const buffer = Buffer.alloc(MAX_DOCKER_CONFIG_BYTES + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > MAX_DOCKER_CONFIG_BYTES) {
          throw new InvalidInputError(`docker config ${configPath} is larger than ${MAX_DOCKER_CONFIG_BYTES} bytes`);
        }
      }
      text = buffer.subarray(0, length).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new InvalidInputError(`cannot read docker config ${configPath}: ${code ?? String(err)}`, { cause: err });
  }
  let root: unknown;
  try {
    root = JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(`docker config ${configPath} is not valid JSON`, { cause: err });
  }
  if (!isObject(root)) throw new InvalidInputError(`docker config ${configPath} is not a JSON object`);
  return {
    auths: isObject(root.auths) ? root.auths : {},
    credHelpers: isObject(root.credHelpers) ? root.credHelpers : {},
    ...(typeof root.credsStore === 'string' && root.credsStore !== '' ? { credsStore: root.credsStore } : {}),
  };
}

/** `https://Host:5000/v1/` → `host:5000`, as the Docker CLI normalises `auths` keys. */
export function normaliseConfigKey(key: string): string {
  const withoutScheme = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  return (slash === -1 ? withoutScheme : withoutScheme.slice(0, slash)).toLowerCase();
}

/** The host names credentials for `registry` may be stored under. */
export function credentialHosts(registry: string): string[] {
  const host = registry.toLowerCase();
  return DOCKER_HUB_HOSTS.includes(host) ? [...DOCKER_HUB_HOSTS] : [host];
}

function findEntry(map: Readonly<Record<string, unknown>>, registry: string): [string, unknown] | undefined {
  const hosts = credentialHosts(registry);
  const exactKeys = hosts.includes('docker.io') ? [DOCKER_HUB_LEGACY_KEY, ...hosts] : hosts;
  for (const key of exactKeys) {
    if (Object.hasOwn(map, key)) return [key, map[key]];
  }
  for (const [key, value] of Object.entries(map)) {
    if (hosts.includes(normaliseConfigKey(key))) return [key, value];
  }
  return undefined;
}

function decodeEntry(
  entry: Record<string, unknown>,
  key: string,
  configPath: string,
): { credentials?: RegistryCredentials; note?: string } {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new InvalidInputError(`docker config ${configPath}: auths[${JSON.stringify(key)}].auth is not base64 of user:password`);
    }
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (password !== '') return { credentials: { username, password } };
  } else if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string' && entry.password !== '') {
    return { credentials: { username: entry.username, password: entry.password } };
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    return { note: `auths[${JSON.stringify(key)}] holds only an identitytoken (OAuth refresh token), which dockergate does not use` };
  }
  return {};
}

/** Credentials for `registry` in a parsed config; inline `auths` win over helpers. */
export function findCredentials(config: DockerConfig | null, registry: string, configPath: string): CredentialLookup {
  if (!config) return { configPath };
  const auth = findEntry(config.auths, registry);
  const decoded = auth && isObject(auth[1]) ? decodeEntry(auth[1], auth[0], configPath) : {};
  const helperEntry = findEntry(config.credHelpers, registry);
  const helperName = typeof helperEntry?.[1] === 'string' && helperEntry[1] !== '' ? helperEntry[1] : config.credsStore;
  return {
    configPath,
    ...(decoded.credentials ? { credentials: decoded.credentials } : {}),
    ...(helperName ? { helper: `docker-credential-${helperName}` } : {}),
    ...(decoded.note ? { note: decoded.note } : {}),
  };
}

/** Reads the config file and looks `registry` up in it. */
export async function lookupCredentials(registry: string, configPath = defaultDockerConfigPath()): Promise<CredentialLookup> {
  return findCredentials(await readDockerConfig(configPath), registry, configPath);
}
