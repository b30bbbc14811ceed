/**
 * Image references in skopeo's transport syntax (containers-transports(5)):
 * `docker://host/repo:tag|@digest`, `docker-daemon:name:tag`, `docker-archive:path[:ref]`,
 * `oci:path[:tag]`, `dir:/rootfs`.
 */
import { InvalidInputError } from '../infra/errors.js';
import type { Digest } from './types.js';

export interface RegistryReference {
  readonly transport: 'docker';
  /** Registry host[:port] as used in URLs (`registry-1.docker.io` for Docker Hub). */
  readonly registry: string;
  /** Repository path (`library/nginx`). */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export type SourceReference =
  | RegistryReference
  | { readonly transport: 'docker-daemon'; readonly name: string }
  | { readonly transport: 'docker-archive'; readonly path: string; readonly name?: string }
  | { readonly transport: 'oci'; readonly path: string; readonly tag?: string }
  | { readonly transport: 'dir'; readonly path: string };

export const TRANSPORTS = ['docker', 'docker-daemon', 'docker-archive', 'oci', 'dir'] as const;

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export function parseReference(input: string): SourceReference {
  const colon = input.indexOf(':');
  const transport = colon === -1 ? '' : input.slice(0, colon);
  const rest = colon === -1 ? '' : input.slice(colon + 1);
  switch (transport) {
    case 'docker':
      if (!rest.startsWith('//') || rest === '//') throw new InvalidInputError(`${input}: docker transport needs docker://host/repo:tag`);
      return parseRegistryReference(rest.slice(2));
    case 'docker-daemon':
      if (!rest) throw new InvalidInputError(`${input}: docker-daemon needs an image name or id`);
      return { transport: 'docker-daemon', name: rest };
    case 'docker-archive':
    case 'oci': {
      if (!rest) throw new InvalidInputError(`${input}: ${transport} needs a path`);
      // As skopeo on Unix: the path ends at the first ':'; the rest names the image inside.
      const cut = rest.indexOf(':');
      const path = cut === -1 ? rest : rest.slice(0, cut);
      const suffix = cut === -1 ? '' : rest.slice(cut + 1);
      const hasSuffix = suffix !== '';
      if (!path) throw new InvalidInputError(`${input}: ${transport} needs a path`);
      if (transport === 'oci') return { transport, path, ...(hasSuffix ? { tag: suffix } : {}) };
      return { transport, path, ...(hasSuffix ? { name: suffix } : {}) };
    }
    case 'dir':
      if (!rest) throw new InvalidInputError(`${input}: dir needs a path`);
      return { transport: 'dir', path: rest };
    default:
      throw new InvalidInputError(
        `${JSON.stringify(input)} has no known transport; use one of ${TRANSPORTS.map((t) => (t === 'docker' ? 'docker://' : `${t}:`)).join(', ')}`,
      );
  }
}

/** Docker's reference grammar (distribution/reference): `[host[:port]/]path[:tag][@digest]`. */
export function parseRegistryReference(name: string): RegistryReference {
  let remainder = name;
  let digest: Digest | undefined;
  const at = remainder.indexOf('@');
  if (at !== -1) {
    const value = remainder.slice(at + 1);
    if (!DIGEST.test(value)) throw new InvalidInputError(`${name}: digest must be sha256:<64 hex>`);
    digest = value as Digest;
    remainder = remainder.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = remainder.lastIndexOf('/');
  const tagColon = remainder.lastIndexOf(':');
  if (tagColon > lastSlash) {
    tag = remainder.slice(tagColon + 1);
    if (!TAG.test(tag)) throw new InvalidInputError(`${name}: invalid tag ${JSON.stringify(tag)}`);
    remainder = remainder.slice(0, tagColon);
  }
  const firstSlash = remainder.indexOf('/');
  const first = firstSlash === -1 ? '' : remainder.slice(0, firstSlash);
  const isHost = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = isHost ? first : DOCKER_HUB;
  let repository = isHost ? remainder.slice(firstSlash + 1) : remainder;
  if (registry === DOCKER_HUB) {
    registry = DOCKER_HUB_API;
    if (!repository.includes('/')) repository = `library/${repository}`;
  }
  if (!REPOSITORY.test(repository)) throw new InvalidInputError(`${name}: invalid repository ${JSON.stringify(repository)}`);
  if (!tag && !digest) tag = 'latest';
  return { transport: 'docker', registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatReference(ref: SourceReference): string {
  switch (ref.transport) {
    case 'docker': {
      const suffix = `${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
      return `docker://${ref.registry}/${ref.repository}${suffix}`;
    }
    case 'docker-daemon':
      return `docker-daemon:${ref.name}`;
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.name ? `:${ref.name}` : ''}`;
    case 'oci':
      return `oci:${ref.path}${ref.tag ? `:${ref.tag}` : ''}`;
    case 'dir':
      return `dir:${ref.path}`;
  }
}

/** Loopback registries may use plain http; any other host needs `--insecure` for http. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.split(':')[0]!;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A repository name of the distribution grammar (names from a catalog are checked before use). */
export const isRepositoryName = (name: string): boolean => REPOSITORY.test(name);
/** A tag of the distribution grammar. */
export const isTagName = (tag: string): boolean => TAG.test(tag);
