/**
 * A registry's listings, for crawls: repositories (`GET /v2/_catalog`), tags of a repository
 * (`GET /v2/<name>/tags/list`) and what a tag resolves to (`HEAD /v2/<name>/manifests/<tag>`),
 * through the registry client (auth, retries, deadlines, loopback rules) of `sources/registry.ts`.
 *
 * Pagination (OCI distribution-spec "Listing Tags", Docker registry API "Pagination"): each page
 * asks for `n` entries; the next page is the `Link: <url>; rel="next"` header, resolved against
 * the request URL (Debian's docker-registry sends a relative one) and refused if it leaves the
 * registry. Servers differ: a `400 PAGINATION_NUMBER_INVALID`, or a page over
 * `maxRegistryPageBytes`, halves `n` and asks again; a server that ignores `n`/`last` and repeats a
 * page ends the listing once a page brings nothing new. Names are checked against the
 * distribution grammar before use: the others are skipped and reported.
 */
import { InvalidInputError, LimitExceededError, UnsupportedError } from '../infra/errors.js';
import { isRepositoryName, isTagName } from './reference.js';
import { RegistryClient, type RegistryOptions } from './sources/registry.js';
import type { Digest } from './types.js';

/** The page size asked for first. */
const FIRST_PAGE_SIZE = 1_000;

export interface Listing {
  /** Valid names, in the order the registry gave them, each once. */
  readonly names: string[];
  /** Names the registry listed that are not valid (skipped). */
  readonly invalid: string[];
}

export class RegistryCatalog {
  private readonly catalogClient: RegistryClient;
  private readonly clients = new Map<string, RegistryClient>();

  constructor(
    readonly registry: string,
    private readonly options: RegistryOptions,
  ) {
    this.catalogClient = new RegistryClient({ transport: 'docker', registry, repository: 'catalog' }, options, 'registry:catalog:*');
  }

  private clientOf(repository: string): RegistryClient {
    let client = this.clients.get(repository);
    if (!client) {
      client = new RegistryClient({ transport: 'docker', registry: this.registry, repository }, this.options);
      this.clients.set(repository, client);
    }
    return client;
  }

  /** Every repository of the catalog. */
  repositories(): Promise<Listing> {
    return this.list(this.catalogClient, '/v2/_catalog', 'repositories', 'the catalog', isRepositoryName);
  }

  /** Every tag of `repository`. */
  tags(repository: string): Promise<Listing> {
    return this.list(this.clientOf(repository), `/v2/${repository}/tags/list`, 'tags', `the tags of ${repository}`, isTagName);
  }

  /** The digest `repository:tag` resolves to now (one HEAD; a GET when the registry gives no digest header). */
  async digestOf(repository: string, tag: string): Promise<Digest> {
    const client = this.clientOf(repository);
    const what = `manifest ${repository}:${tag}`;
    const head = await client.headManifestDigest(tag, what);
    if (head) return head;
    return (await client.getManifest(tag, what)).digest;
  }

  private async list(client: RegistryClient, path: string, field: 'repositories' | 'tags', what: string, valid: (name: string) => boolean): Promise<Listing> {
    const limits = this.options.limits;
    const seen = new Set<string>();
    const names: string[] = [];
    const invalid: string[] = [];
    let pageSize = FIRST_PAGE_SIZE;
    let next: string | undefined = `${path}?n=${pageSize}`;
    for (let page = 0; next !== undefined; page++) {
      if (page >= limits.maxRegistryPages) throw new LimitExceededError('maxRegistryPages', limits.maxRegistryPages, `${what} (registry ${this.registry})`);
      let answer: { status: number; bytes: Buffer; link: string | null };
      try {
        answer = await client.getPage(next, what, limits.maxRegistryPageBytes, (status) => status === 400);
      } catch (err) {
        // A page too large for the bound: ask for fewer entries, if the page size is ours to choose.
        if (err instanceof LimitExceededError && pageSize > 1 && next.includes(`n=${pageSize}`)) {
          next = withPageSize(next, (pageSize = Math.floor(pageSize / 2)));
          continue;
        }
        throw err;
      }
      if (answer.status === 400) {
        if (/PAGINATION_NUMBER_INVALID/.test(answer.bytes.toString('utf8')) && pageSize > 1) {
          next = withPageSize(next, (pageSize = Math.floor(pageSize / 2)));
          continue;
        }
        throw new InvalidInputError(`${what}: registry ${this.registry} answered HTTP 400: ${answer.bytes.toString('utf8').slice(0, 200)}`);
      }
      const entries = parsePage(answer.bytes, field, `${what} (registry ${this.registry})`);
      let fresh = 0;
      for (const name of entries) {
        if (seen.has(name)) continue;
        seen.add(name);
        fresh++;
        if (seen.size > limits.maxRegistryEntries) throw new LimitExceededError('maxRegistryEntries', limits.maxRegistryEntries, `${what} (registry ${this.registry})`);
        (valid(name) ? names : invalid).push(name);
      }
      // A server that ignores `last` repeats a page: nothing new ends the listing.
      next = fresh === 0 ? undefined : this.nextPage(client, answer.link, what);
    }
    return { names, invalid };
  }

  /** The path and query of the `rel="next"` link, if any, on this registry only. */
  private nextPage(client: RegistryClient, link: string | null, what: string): string | undefined {
    if (!link) return undefined;
    const match = /<([^>]*)>\s*;[^,]*\brel="?next"?/i.exec(link);
    if (!match) return undefined;
    const base = client.urlOf('/');
    let url: URL;
    try {
      url = new URL(match[1]!, client.urlOf(`/v2/`));
    } catch (err) {
      throw new InvalidInputError(`${what}: registry ${this.registry} sent an invalid Link header`, { cause: err });
    }
    if (url.origin !== base.origin) throw new UnsupportedError(`${what}: registry ${this.registry} links the next page to another server (${url.origin})`);
    return `${url.pathname}${url.search}`;
  }
}

function withPageSize(pathAndQuery: string, n: number): string {
  const url = new URL(pathAndQuery, 'http://registry.invalid');
  url.searchParams.set('n', String(n));
  return `${url.pathname}${url.search}`;
}

function parsePage(bytes: Buffer, field: 'repositories' | 'tags', what: string): string[] {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`${what}: the page is not JSON`, { cause: err });
  }
  const list = (body as Record<string, unknown> | null)?.[field];
  // An empty repository may answer `"tags": null`.
  if (list === null || list === undefined) return [];
  if (!Array.isArray(list) || !list.every((name): name is string => typeof name === 'string')) throw new InvalidInputError(`${what}: "${field}" is not a list of names`);
  return list;
}
