/**
 * Images read straight from a registry over the OCI distribution API (distribution-spec v1.1),
 * no daemon: manifest (or index → platform manifest), config blob, and layer blobs streamed on
 * demand. Every byte is verified: manifests against the reference's digest (or the registry's
 * `Docker-Content-Digest`), configs and layers against their descriptors' digest and size.
 *
 * Transport rules: https by default; plain http only to loopback registries (Debian's
 * docker-registry on 127.0.0.1:5000) or with `insecure`. Redirects (blob storage) are followed by
 * hand, up to `limits.maxRedirects`, and the `Authorization` header never leaves the host it was
 * meant for. Auth: anonymous first; on 401 the `WWW-Authenticate` challenge decides (Bearer token
 * server, or Basic), with credentials from the Docker config file.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortedError,
  AuthError,
  DigestMismatchError,
  type DockergateError,
  DockergateError as DockergateErrorClass,
  InvalidInputError,
  LimitExceededError,
  NotFoundError,
  UnavailableError,
  UnsupportedError,
} from '../../infra/errors.js';
import { KiB, type Limits, MiB } from '../../infra/limits.js';
import { roundTrip } from '../../infra/round-trips.js';
import {
  type Descriptor,
  MANIFEST_ACCEPT,
  parseDigest,
} from '../manifest.js';
import { formatReference, isLoopbackRegistry, type RegistryReference, type SourceReference } from '../reference.js';
import { type BlobReader, type ManifestBytes, resolveManifest } from '../resolve-image.js';
import type { ImageSource, SourceOptions } from '../source.js';
import { sha256Digest, VerifyingStream } from '../streams.js';
import type { Digest, LayerDescriptor, OpenedImage } from '../types.js';
import { type CredentialLookup, defaultDockerConfigPath, lookupCredentials } from './docker-config.js';
import {
  type AuthChallenge,
  basicAuthorization,
  parseWwwAuthenticate,
  summariseErrorBody,
  tokenFromResponse,
} from './registry-auth.js';

/** Waits before the 2nd and 3rd attempt of an idempotent request (3 attempts in all). */
const RETRY_BACKOFF_MS: readonly number[] = [200, 800];
/**
 * A registry that answers 429 is given more patience than one that fails: a request is tried again
 * after each `Retry-After` (RFC 9110 §10.2.3: seconds or an HTTP date; each wait capped) until it
 * has waited this long in all.
 */
const RATE_LIMIT_PATIENCE_MS = 5 * 60_000;
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Per registry, until when requests wait because it answered 429 (shared by every client of this
 * process, so concurrent crawls of one registry slow down together instead of each hammering it).
 */
const pausedUntil = new Map<string, number>();

/** An answer of 429: retryable, after the delay the registry asked for. */
class RateLimitedError extends UnavailableError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** `Retry-After` in ms (delta seconds or an HTTP date), within [0, MAX_RETRY_AFTER_MS]; 1 s when absent or unreadable. */
function retryAfterMs(header: string | null, now = Date.now()): number {
  if (!header) return 1_000;
  const value = header.trim();
  const ms = /^\d+$/.test(value) ? Number(value) * 1_000 : Date.parse(value) - now;
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : 1_000;
}
/** Bytes of an error body read for its message, and of a token-server response. */
const ERROR_BODY_BYTES = 16 * KiB;
const TOKEN_BODY_BYTES = 1 * MiB;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'dockergate/0.1';
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

// ---------------------------------------------------------------------------------- URL policy

export type RegistryScheme = 'https:' | 'http:';

/**
 * Schemes to try for a registry, in order: loopback registries speak plain http (no TLS
 * attempt); others https, then http as a fallback only when `insecure`.
 */
export function registrySchemes(registry: string, insecure: boolean): RegistryScheme[] {
  if (isLoopbackRegistry(registry)) return ['http:'];
  return insecure ? ['https:', 'http:'] : ['https:'];
}

/**
 * Checks a URL before anything is sent to it (registry endpoints, token realms, redirect
 * targets): only http(s), no embedded credentials, plain http only to loopback hosts unless
 * `insecure`, and no hop from a non-loopback origin to a loopback host (a remote registry must
 * not make us probe local services). Throws `UnsupportedError` / `InvalidInputError`.
 */
export function checkRegistryUrl(url: string | URL, insecure: boolean, origin?: URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new InvalidInputError(`not a valid URL: ${JSON.stringify(String(url)).slice(0, 200)}`, { cause: err });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new UnsupportedError(`refusing ${parsed.protocol} URL for ${parsed.host || 'registry'}: only http(s) is used`);
  }
  if (parsed.username || parsed.password) {
    throw new InvalidInputError(`refusing URL with embedded credentials for ${parsed.host}`);
  }
  const loopback = isLoopbackRegistry(parsed.host);
  if (parsed.protocol === 'http:' && !loopback && !insecure) {
    throw new UnsupportedError(
      `refusing plain http to ${parsed.host}: only loopback registries may use http without --insecure`,
    );
  }
  if (origin && loopback && !isLoopbackRegistry(origin.host)) {
    throw new UnsupportedError(`refusing to follow ${origin.host} to loopback address ${parsed.host}`);
  }
  return parsed;
}

/** The registry's base URL (`https://host/`) for a scheme. */
export function registryBaseUrl(registry: string, scheme: RegistryScheme): URL {
  return new URL(`${scheme}//${registry}/`);
}

// --------------------------------------------------------------------------------- HTTP layer

/** Transport failures (no HTTP answer) that may be worth another scheme. */
const transportFailures = new WeakSet<Error>();

/** A per-request timer whose abort we can tell apart from the caller's. */
class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  fired = false;

  constructor(readonly ms: number) {
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort(new Error(`timed out after ${ms} ms`));
    }, ms);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

interface HttpRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST';
  /** The body of a PUT or POST (pushed blobs and manifests are small enough to hold). */
  readonly body?: Buffer;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  /** Sent only to `url`'s own host and scheme, never to a redirect target elsewhere. */
  readonly authorization?: string;
  /** For messages: `manifest docker://host/repo:tag`. */
  readonly what: string;
  /**
   * `whole`: the timeout covers the body too (small JSON bodies); `headers`: it ends when the
   * response headers arrive (layer blobs, whose bodies may legitimately take longer; undici's own
   * body idle timeout and the caller's signal bound them).
   */
  readonly timeout: 'whole' | 'headers';
  readonly signals: readonly AbortSignal[];
}

/** A response with headers in hand; `finish()` must be called once its body is consumed or dropped. */
interface Exchange {
  readonly response: Response;
  readonly url: URL;
  finish(): void;
  /** Maps an error seen while reading the body to a typed error. */
  fail(err: unknown): DockergateError;
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as (Error & { code?: string }) | undefined;
  if (cause && typeof cause === 'object') {
    const detail = [cause.code, cause.message].filter(Boolean).join(' ');
    if (detail) return `${err.message} (${detail})`;
  }
  return err.message;
}

function anyAborted(signals: readonly AbortSignal[]): boolean {
  return signals.some((signal) => signal.aborted);
}

function mapTransportError(err: unknown, what: string, deadline: Deadline, signals: readonly AbortSignal[]): DockergateError {
  if (anyAborted(signals)) return new AbortedError(`${what}: aborted`, { cause: err });
  if (deadline.fired) return new UnavailableError(`${what}: no answer within ${deadline.ms} ms`, { cause: err });
  if (err instanceof DockergateErrorClass) return err;
  const mapped = new UnavailableError(`${what}: ${describeCause(err)}`, { cause: err });
  transportFailures.add(mapped);
  return mapped;
}

async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // already failed or consumed
  }
}

/** One request, redirects followed by hand. Returns whatever non-redirect status came back. */
async function httpRequest(request: HttpRequest, limits: Limits, insecure: boolean): Promise<Exchange> {
  const deadline = new Deadline(limits.httpTimeoutMs);
  const signal = AbortSignal.any([deadline.signal, ...request.signals]);
  const authHost = request.url.host;
  const authProtocol = request.url.protocol;
  let url = checkRegistryUrl(request.url, insecure);
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...request.headers };
    if (request.authorization && url.host === authHost && url.protocol === authProtocol) {
      headers.authorization = request.authorization;
    }
    let response: Response;
    try {
      // Timed and counted per request (headers only: bodies are read later); `crawl --json` reports the count.
      response = await roundTrip('registry', () => fetch(url, { method: request.method, headers, redirect: 'manual', signal, ...(request.body ? { body: request.body } : {}) }));
    } catch (err) {
      deadline.clear();
      throw mapTransportError(err, request.what, deadline, request.signals);
    }
    if (REDIRECT_STATUSES.has(response.status)) {
      await discard(response);
      const location = response.headers.get('location');
      try {
        if (!location) {
          throw new InvalidInputError(`${request.what}: ${url.host} answered HTTP ${response.status} without a Location`);
        }
        if (hop >= limits.maxRedirects) {
          throw new LimitExceededError('maxRedirects', limits.maxRedirects, `${request.what}: redirects`);
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch (err) {
          throw new InvalidInputError(`${request.what}: invalid redirect Location from ${url.host}`, { cause: err });
        }
        url = checkRegistryUrl(next, insecure, url);
      } catch (err) {
        deadline.clear();
        throw err;
      }
      continue;
    }
    if (request.timeout === 'headers') deadline.clear();
    const finalUrl = url;
    return {
      response,
      url: finalUrl,
      finish: () => deadline.clear(),
      fail: (err) => mapTransportError(err, request.what, deadline, request.signals),
    };
  }
}

interface BodyBytes {
  readonly bytes: Buffer;
  /** True when the body had more than the cap (the rest was not read). */
  readonly overflow: boolean;
}

/** Reads at most `max` bytes of a body; stops (and cancels the body) as soon as there are more. */
async function readBody(exchange: Exchange, max: number): Promise<BodyBytes> {
  const body = exchange.response.body;
  if (!body) return { bytes: Buffer.alloc(0), overflow: false };
  const reader = body.getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks, total), overflow: false };
      if (total + value.byteLength > max) {
        await reader.cancel().catch(() => undefined);
        return { bytes: Buffer.concat(chunks, total), overflow: true };
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      total += value.byteLength;
    }
  } catch (err) {
    throw exchange.fail(err);
  }
}

/** The registry's error body, summarised for a message (`HTTP 401: UNAUTHORIZED: ...`). */
async function errorSummary(exchange: Exchange): Promise<string> {
  let text = '';
  try {
    text = summariseErrorBody((await readBody(exchange, ERROR_BODY_BYTES)).bytes);
  } catch {
    // the status alone will do
  }
  exchange.finish();
  return text ? `HTTP ${exchange.response.status}: ${text}` : `HTTP ${exchange.response.status}`;
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Adds context to the message of errors thrown by the parsers, keeping their class. */
// ------------------------------------------------------------------------------ the client

interface RequestSpec {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST';
  /** Path under the registry root: `/v2/<repo>/manifests/<ref>` (or an upload URL the registry gave, on its own origin). */
  readonly path: string;
  readonly accept?: string;
  readonly body?: Buffer;
  readonly contentType?: string;
  readonly what: string;
  readonly timeout: 'whole' | 'headers';
  readonly signal?: AbortSignal;
  /** Non-2xx statuses handed back to the caller instead of being turned into errors. */
  readonly passStatus?: (status: number) => boolean;
}

/** What talking to a registry needs of the source options. */
export type RegistryOptions = Pick<SourceOptions, 'limits' | 'insecure' | 'dockerConfigPath' | 'signal'>;

/**
 * One registry repository as seen by one opened image (scheme, auth state, requests), or the
 * registry as a whole for its catalog (`scope` `registry:catalog:*`).
 */
export class RegistryClient {
  private base: URL;
  private readonly fallbacks: URL[];
  private settled = false;
  /** `Authorization` values per (registry, scope). */
  private readonly authorizations = new Map<string, string>();
  private credentialLookup: Promise<CredentialLookup> | undefined;
  readonly scope: string;
  /** `registry 127.0.0.1:5000, repository x/y` */
  readonly where: string;

  constructor(
    readonly ref: RegistryReference,
    readonly options: RegistryOptions,
    scope = `repository:${ref.repository}:pull`,
  ) {
    const [first, ...rest] = registrySchemes(ref.registry, options.insecure).map((scheme) =>
      registryBaseUrl(ref.registry, scheme),
    );
    this.base = first!;
    this.fallbacks = rest;
    this.scope = scope;
    this.where = `registry ${ref.registry}, repository ${ref.repository}`;
  }

  get limits(): Limits {
    return this.options.limits;
  }

  private get authKey(): string {
    return `${this.ref.registry} ${this.scope}`;
  }

  private signals(extra?: AbortSignal): AbortSignal[] {
    return [this.options.signal, extra].filter((signal): signal is AbortSignal => signal !== undefined);
  }

  credentials(): Promise<CredentialLookup> {
    this.credentialLookup ??= lookupCredentials(
      this.ref.registry,
      this.options.dockerConfigPath ?? defaultDockerConfigPath(),
    );
    return this.credentialLookup;
  }

  /**
   * Runs an idempotent request up to three times while it fails with `UnavailableError`; answers
   * of 429 for up to `RATE_LIMIT_PATIENCE_MS`, each time after the registry's `Retry-After`,
   * during which every request of this process to that registry waits too.
   */
  async withRetries<T>(run: () => Promise<T>, extra?: AbortSignal): Promise<T> {
    const signals = this.signals(extra);
    let rateLimitedMs = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.waitWhilePaused(signals);
        return await run();
      } catch (err) {
        if (err instanceof RateLimitedError && rateLimitedMs < RATE_LIMIT_PATIENCE_MS && !anyAborted(signals)) {
          rateLimitedMs += Math.max(err.retryAfterMs, 1);
          pausedUntil.set(this.ref.registry, Math.max(pausedUntil.get(this.ref.registry) ?? 0, Date.now() + err.retryAfterMs));
          attempt--;
          continue;
        }
        const backoff = RETRY_BACKOFF_MS[attempt];
        if (!(err instanceof UnavailableError) || backoff === undefined || anyAborted(signals)) throw err;
        try {
          await sleep(backoff, undefined, signals.length > 0 ? { signal: AbortSignal.any(signals) } : {});
        } catch (abort) {
          throw new AbortedError(`${err.message} (aborted while waiting to retry)`, { cause: abort });
        }
      }
    }
  }

  private async waitWhilePaused(signals: readonly AbortSignal[]): Promise<void> {
    const wait = (pausedUntil.get(this.ref.registry) ?? 0) - Date.now();
    if (wait <= 0) return;
    try {
      await sleep(wait, undefined, signals.length > 0 ? { signal: AbortSignal.any([...signals]) } : {});
    } catch (abort) {
      throw new AbortedError(`${this.where}: aborted while waiting out the registry's Retry-After`, { cause: abort });
    }
  }

  /** One attempt with the current authorization, re-authenticating once on 401. */
  async send(spec: RequestSpec): Promise<Exchange> {
    const cached = this.authorizations.get(this.authKey);
    let exchange = await this.exchange(spec, cached);
    if (exchange.response.status === 401) {
      const challenge = exchange.response.headers.get('www-authenticate');
      const summary = await errorSummary(exchange);
      const authorization = await this.authenticate(challenge, spec, summary);
      // The same Basic credentials were just refused: sending them again cannot help.
      if (authorization === cached) throw await this.rejected(spec.what, summary);
      exchange = await this.exchange(spec, authorization);
      if (exchange.response.status === 401) throw await this.rejected(spec.what, await errorSummary(exchange));
    }
    const status = exchange.response.status;
    if ((status >= 200 && status < 300) || spec.passStatus?.(status)) return exchange;
    const summary = await errorSummary(exchange);
    if (status === 404) throw new NotFoundError(`${spec.what} not found (${this.where}): ${summary}`);
    if (status === 403) throw new AuthError(`${spec.what}: access denied (${this.where}): ${summary}`);
    if (status === 429) throw new RateLimitedError(`${spec.what}: ${this.where} is rate limiting: ${summary}`, retryAfterMs(exchange.response.headers.get('retry-after')));
    if (isRetryableStatus(status)) throw new UnavailableError(`${spec.what}: ${this.where} failed: ${summary}`);
    throw new InvalidInputError(`${spec.what}: unexpected answer from ${this.where}: ${summary}`);
  }

  /** Sends to the current base URL; the first transport failure moves on to a fallback scheme. */
  private async exchange(spec: RequestSpec, authorization: string | undefined): Promise<Exchange> {
    for (;;) {
      const url = new URL(spec.path, this.base);
      try {
        const exchange = await httpRequest(
          {
            method: spec.method,
            url,
            headers: { ...(spec.accept ? { accept: spec.accept } : {}), ...(spec.contentType ? { 'content-type': spec.contentType } : {}) },
            ...(spec.body ? { body: spec.body } : {}),
            ...(authorization ? { authorization } : {}),
            what: spec.what,
            timeout: spec.timeout,
            signals: this.signals(spec.signal),
          },
          this.limits,
          this.options.insecure,
        );
        this.settled = true;
        return exchange;
      } catch (err) {
        const fallback = this.fallbacks[0];
        if (!this.settled && fallback && err instanceof Error && transportFailures.has(err)) {
          this.base = fallback;
          this.fallbacks.shift();
          continue;
        }
        throw err;
      }
    }
  }

  /** Answers a 401 challenge; returns the `Authorization` value to retry with. */
  private async authenticate(header: string | null, spec: RequestSpec, summary: string): Promise<string> {
    const challenges = header ? parseWwwAuthenticate(header) : [];
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    const basic = challenges.find((challenge) => challenge.scheme === 'basic');
    const lookup = await this.credentials();
    let authorization: string;
    if (bearer) {
      authorization = `Bearer ${await this.fetchToken(bearer, lookup, spec)}`;
    } else if (basic) {
      if (!lookup.credentials) throw this.needCredentials(spec.what, lookup, summary);
      authorization = basicAuthorization(lookup.credentials);
    } else {
      const schemes = challenges.map((challenge) => challenge.scheme).join(', ');
      throw new AuthError(
        `${spec.what}: ${this.where} demands authentication ${
          schemes ? `with unsupported scheme(s) ${schemes}` : 'without a WWW-Authenticate challenge'
        }: ${summary}`,
      );
    }
    this.authorizations.set(this.authKey, authorization);
    return authorization;
  }

  /** The error for a registry that wants credentials we do not have. */
  private needCredentials(what: string, lookup: CredentialLookup, summary: string): DockergateError {
    if (lookup.helper) {
      return new UnsupportedError(
        `${what}: ${this.where} requires credentials, and ${lookup.configPath} delegates ${this.ref.registry} to the ` +
          `credential helper ${lookup.helper}, which dockergate does not run; add an inline "auths" entry ` +
          `(auth = base64 of user:password) for ${this.ref.registry} (${summary})`,
      );
    }
    const note = lookup.note ? `; ${lookup.note}` : '';
    return new AuthError(
      `${what}: ${this.where} requires credentials and ${lookup.configPath} has none for ${this.ref.registry}${note} (${summary})`,
    );
  }

  /** The error for a 401 that survived authentication. */
  private async rejected(what: string, summary: string): Promise<DockergateError> {
    const lookup = await this.credentials();
    if (!lookup.credentials) return this.needCredentials(what, lookup, summary);
    return new AuthError(
      `${what}: ${this.where} rejected the credentials for ${this.ref.registry} from ${lookup.configPath}: ${summary}`,
    );
  }

  /** distribution token authentication (`docs/spec/auth/token.md`): GET realm?service&scope. */
  private async fetchToken(challenge: AuthChallenge, lookup: CredentialLookup, spec: RequestSpec): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new AuthError(`${spec.what}: ${this.where} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = checkRegistryUrl(realm, this.options.insecure, this.base);
    } catch (err) {
      throw new AuthError(`${spec.what}: ${this.where} named an unusable token realm: ${(err as Error).message}`, { cause: err });
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', this.scope);
    const what = `token for ${this.scope} from ${url.origin}${url.pathname}`;
    const exchange = await httpRequest(
      {
        method: 'GET',
        url,
        headers: { accept: 'application/json' },
        ...(lookup.credentials ? { authorization: basicAuthorization(lookup.credentials) } : {}),
        what,
        timeout: 'whole',
        signals: this.signals(spec.signal),
      },
      this.limits,
      this.options.insecure,
    );
    const status = exchange.response.status;
    if (status < 200 || status >= 300) {
      const summary = await errorSummary(exchange);
      if (status === 401 || status === 403) {
        if (!lookup.credentials) throw this.needCredentials(spec.what, lookup, `token server: ${summary}`);
        throw new AuthError(
          `${spec.what}: the token server of ${this.where} rejected the credentials from ${lookup.configPath}: ${summary}`,
        );
      }
      if (isRetryableStatus(status)) throw new UnavailableError(`${what}: token server failed: ${summary}`);
      throw new AuthError(`${what}: token server of ${this.where} answered ${summary}`);
    }
    let body: BodyBytes;
    try {
      body = await readBody(exchange, TOKEN_BODY_BYTES);
    } finally {
      exchange.finish();
    }
    if (body.overflow) throw new AuthError(`${what}: token response larger than ${TOKEN_BODY_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.bytes.toString('utf8')) as unknown;
    } catch (err) {
      throw new AuthError(`${what}: token response is not JSON`, { cause: err });
    }
    const token = tokenFromResponse(parsed);
    if (!token) throw new AuthError(`${what}: token response has no usable token or access_token`);
    return token;
  }

  /**
   * A small body (manifest, config, listing page) read whole with a byte cap, retried as a unit,
   * with the answer's status (one `spec.passStatus` accepted) and headers.
   * `onOverflow` builds the error for a body longer than `max`.
   */
  async getBytes(
    spec: Omit<RequestSpec, 'method' | 'timeout'>,
    max: number,
    onOverflow: () => DockergateError,
  ): Promise<{ bytes: Buffer; contentType: string; status: number; headers: Headers }> {
    return this.withRetries(async () => {
      const exchange = await this.send({ ...spec, method: 'GET', timeout: 'whole' });
      try {
        const declared = exchange.response.headers.get('content-length');
        if (declared && /^\d+$/.test(declared) && Number(declared) > max) {
          await discard(exchange.response);
          throw onOverflow();
        }
        const body = await readBody(exchange, max);
        if (body.overflow) throw onOverflow();
        const { status, headers } = exchange.response;
        return { bytes: body.bytes, contentType: headers.get('content-type') ?? '', status, headers };
      } finally {
        exchange.finish();
      }
    }, spec.signal);
  }

  /**
   * One page of a listing (`/v2/_catalog`, `/v2/<repo>/tags/list`), read whole within `max` bytes,
   * with its `Link` header; statuses `passStatus` accepts come back instead of failing (the caller
   * shrinks its page size on `400 PAGINATION_NUMBER_INVALID`).
   */
  async getPage(path: string, what: string, max: number, passStatus?: (status: number) => boolean): Promise<{ status: number; bytes: Buffer; link: string | null }> {
    const overflow = () => new LimitExceededError('maxRegistryPageBytes', max, `${what} (${this.where})`);
    const { status, bytes, headers } = await this.getBytes({ path, accept: 'application/json', what, ...(passStatus ? { passStatus } : {}) }, max, overflow);
    return { status, bytes, link: headers.get('link') };
  }

  /** One request whose answer's body is not needed (HEAD, uploads, manifest PUTs): its status and headers. */
  private async sendBodiless(spec: RequestSpec): Promise<{ status: number; headers: Headers }> {
    const exchange = await this.send(spec);
    try {
      await discard(exchange.response);
      return { status: exchange.response.status, headers: exchange.response.headers };
    } finally {
      exchange.finish();
    }
  }

  /** The URL a `Link` header's relative reference resolves against (RFC 8288 §3.2: the request's). */
  urlOf(path: string): URL {
    return new URL(path, this.base);
  }

  /**
   * Pushes a blob unless the registry has it (distribution-spec "Pushing a blob monolithically":
   * POST an upload, then PUT its Location with `?digest=`). The Location must stay on this registry.
   */
  async pushBlob(bytes: Buffer, digest: Digest, what: string): Promise<void> {
    const known = await this.withRetries(() => this.sendBodiless({ method: 'HEAD', path: this.blobPath(digest), what, timeout: 'whole', passStatus: (status) => status === 404 }));
    if (known.status >= 200 && known.status < 300) return;
    const started = await this.sendBodiless({ method: 'POST', path: `/v2/${this.ref.repository}/blobs/uploads/`, what: `${what} (upload)`, timeout: 'whole' });
    const location = started.headers.get('location');
    if (!location) throw new InvalidInputError(`${what}: ${this.where} started an upload without a Location`);
    const target = new URL(location, this.base);
    if (target.origin !== this.base.origin) throw new UnsupportedError(`${what}: ${this.where} sends the upload to another server (${target.origin})`);
    target.searchParams.set('digest', digest);
    await this.sendBodiless({ method: 'PUT', path: `${target.pathname}${target.search}`, body: bytes, contentType: 'application/octet-stream', what, timeout: 'whole' });
  }

  /** PUTs a manifest or index under `reference` (a tag, or its own digest). */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, what: string): Promise<void> {
    await this.withRetries(() => this.sendBodiless({ method: 'PUT', path: this.manifestPath(reference), body: bytes, contentType: mediaType, what, timeout: 'whole' }));
  }

  /**
   * The referrers index of `subject` (distribution-spec 1.1 "Listing Referrers"), or undefined
   * when the registry has no referrers API (404: the caller uses the fallback tag schema).
   */
  async referrers(subject: Digest, what: string): Promise<Buffer | undefined> {
    const max = this.limits.maxManifestBytes;
    const page = await this.getPage(`/v2/${this.ref.repository}/referrers/${subject}`, what, max, (status) => status === 404);
    if (page.status === 404) return undefined;
    return page.bytes;
  }

  /** `reference` is a checked tag or digest: no escaping needed (nor wanted for the `:` of a digest). */
  private manifestPath(reference: string): string {
    return `/v2/${this.ref.repository}/manifests/${reference}`;
  }

  blobPath(digest: Digest): string {
    return `/v2/${this.ref.repository}/blobs/${digest}`;
  }

  /**
   * `Docker-Content-Digest` of a manifest by HEAD; undefined when the registry gives none. A HEAD
   * answer has no body, hence no error message: client errors (404, 405, credentials refused...)
   * are left to the GET that follows, which fails the same way with the registry's message.
   */
  async headManifestDigest(reference: string, what: string): Promise<Digest | undefined> {
    let answer: { status: number; headers: Headers };
    try {
      answer = await this.withRetries(() =>
        this.sendBodiless({
          method: 'HEAD',
          path: this.manifestPath(reference),
          accept: MANIFEST_ACCEPT,
          what,
          timeout: 'whole',
          passStatus: (status) => status >= 400 && status < 500 && !isRetryableStatus(status),
        }),
      );
    } catch (err) {
      if (err instanceof AuthError || err instanceof UnsupportedError || err instanceof InvalidInputError) return undefined;
      throw err;
    }
    if (answer.status < 200 || answer.status >= 300) return undefined;
    const header = answer.headers.get('docker-content-digest')?.trim();
    return header && /^sha256:[0-9a-f]{64}$/.test(header) ? (header as Digest) : undefined;
  }

  /** A manifest or index, verified against `expected` (and `size` when a descriptor gave one). */
  async getManifest(reference: string, what: string, expected?: Digest, size?: number): Promise<ManifestBytes> {
    const max = this.limits.maxManifestBytes;
    if (size !== undefined && size > max) throw new LimitExceededError('maxManifestBytes', max, `${what} (${this.where})`);
    const { bytes, contentType } = await this.getBytes(
      { path: this.manifestPath(reference), accept: MANIFEST_ACCEPT, what },
      max,
      () => new LimitExceededError('maxManifestBytes', max, `${what} (${this.where})`),
    );
    const actual = sha256Digest(bytes);
    if (size !== undefined && bytes.length !== size) {
      throw new DigestMismatchError(`${size} bytes`, `${bytes.length} bytes`, `${what} (${this.where}, ${expected ?? actual})`);
    }
    if (expected && actual !== expected) {
      throw new DigestMismatchError(expected, actual, `${what} (${this.where}) does not match its digest`);
    }
    return { bytes, digest: actual, ...(contentType ? { contentType } : {}) };
  }

  /** A small blob (the config), verified against its descriptor's digest and size. */
  async getBlob(descriptor: Descriptor, max: number, limitName: string, what: string): Promise<Buffer> {
    const context = `${what} ${descriptor.digest} (${this.where})`;
    if (descriptor.size > max) throw new LimitExceededError(limitName, max, context);
    const { bytes } = await this.getBytes(
      { path: this.blobPath(descriptor.digest), what: `${what} ${descriptor.digest}` },
      descriptor.size,
      () => new DigestMismatchError(`${descriptor.size} bytes`, `more than ${descriptor.size} bytes`, `${context} is larger than declared`),
    );
    if (bytes.length !== descriptor.size) {
      throw new DigestMismatchError(`${descriptor.size} bytes`, `${bytes.length} bytes`, `${context} is truncated`);
    }
    const actual = sha256Digest(bytes);
    if (actual !== descriptor.digest) {
      throw new DigestMismatchError(descriptor.digest, actual, `${context} does not match its digest`);
    }
    return bytes;
  }

  /** A layer blob as a stream that fails on a wrong digest or size. */
  async openLayer(layer: LayerDescriptor, signal?: AbortSignal): Promise<Readable> {
    const digest = parseDigest(layer.digest, `layer of ${this.where}`);
    const max = this.limits.maxLayerBlobBytes;
    const context = `layer from ${this.ref.registry}/${this.ref.repository}`;
    if (!Number.isSafeInteger(layer.size) || layer.size < 0) {
      throw new InvalidInputError(`${context} ${digest}: invalid size ${String(layer.size)}`);
    }
    if (layer.size > max) throw new LimitExceededError('maxLayerBlobBytes', max, `${context} ${digest}`);
    const exchange = await this.withRetries(
      () => this.send({ method: 'GET', path: this.blobPath(digest), what: `${context} ${digest}`, timeout: 'headers', ...(signal ? { signal } : {}) }),
      signal,
    );
    const body = exchange.response.body;
    const source = body ? Readable.fromWeb(body as unknown as WebReadableStream<Uint8Array>) : Readable.from([]);
    const verifier = new VerifyingStream({
      digest,
      size: layer.size,
      maxBytes: max,
      limitName: 'maxLayerBlobBytes',
      what: context,
    });
    source.once('error', (err) => {
      verifier.destroy(exchange.fail(err));
    });
    // An overall deadline for the body: a registry that trickles bytes (one every few seconds
    // never trips an idle timeout) is cut once the blob is slower than minBlobBytesPerSecond.
    const bodyMs = this.limits.httpTimeoutMs + Math.ceil((layer.size / this.limits.minBlobBytesPerSecond) * 1000);
    const overdue = setTimeout(() => {
      verifier.destroy(new UnavailableError(`${context} ${digest}: not received within ${Math.round(bodyMs / 1000)} s (${layer.size} bytes at minBlobBytesPerSecond ${this.limits.minBlobBytesPerSecond}, after httpTimeoutMs)`));
    }, bodyMs);
    overdue.unref();
    verifier.once('close', () => {
      clearTimeout(overdue);
      exchange.finish();
      // Stops the download when the consumer is done or the verifier failed (e.g. too many bytes).
      if (!source.destroyed) source.destroy();
    });
    source.pipe(verifier);
    return verifier;
  }
}

// ------------------------------------------------------------------------------ the source

function checkReference(ref: RegistryReference): void {
  if (!HOST.test(ref.registry)) throw new InvalidInputError(`invalid registry host ${JSON.stringify(ref.registry)}`);
  if (!REPOSITORY.test(ref.repository)) {
    throw new InvalidInputError(`invalid repository ${JSON.stringify(ref.repository)} for registry ${ref.registry}`);
  }
  if (ref.tag !== undefined && !TAG.test(ref.tag)) throw new InvalidInputError(`invalid tag ${JSON.stringify(ref.tag)}`);
  if (ref.digest !== undefined) parseDigest(ref.digest, `digest of ${ref.registry}/${ref.repository}`);
}

async function openRegistryImage(ref: RegistryReference, options: SourceOptions): Promise<OpenedImage> {
  checkReference(ref);
  const client = new RegistryClient(ref, options);
  const { limits, platform } = options;
  const display = formatReference(ref);
  const manifestRef = ref.digest ?? ref.tag ?? 'latest';

  // The digest the manifest bytes must hash to: the reference's, else the registry's claim.
  const expected = ref.digest ?? (await client.headManifestDigest(manifestRef, `manifest ${display}`));
  const top = await client.getManifest(manifestRef, `manifest ${display}`, expected);
  const reader: BlobReader = {
    manifest: (descriptor) =>
      client.getManifest(descriptor.digest, `manifest ${descriptor.digest} of ${display}`, descriptor.digest, descriptor.size),
    config: async (descriptor) => ({
      bytes: await client.getBlob(descriptor, limits.maxConfigBytes, 'maxConfigBytes', `config of ${display}`),
      digest: descriptor.digest,
    }),
  };
  const resolved = await resolveManifest(top, reader, platform, limits, `${display} (${client.where})`);
  return {
    reference: display,
    manifestDigest: resolved.manifestDigest,
    configDigest: resolved.configDigest,
    config: resolved.config,
    layers: resolved.manifest.layers,
    openLayer: (layer, signal) => client.openLayer(layer, signal),
    close: async () => undefined,
  };
}

/**
 * One layer blob of `ref`'s repository, verified as `OpenedImage.openLayer` verifies it, without
 * reading the manifest again: what a cluster worker fetches for an `extract-layer` unit whose
 * image lives in a registry (credentials from the worker's own Docker config, as for `open`).
 */
export function openRegistryLayer(ref: RegistryReference, options: RegistryOptions, layer: LayerDescriptor, signal?: AbortSignal): Promise<Readable> {
  checkReference(ref);
  return new RegistryClient(ref, options).openLayer(layer, signal);
}

/**
 * `RegistryReference` itself, spelt as the other sources spell theirs: with the interface name,
 * `sources/index.ts`'s `as readonly ImageSource<never>[]` cast is rejected by tsc (TS2352).
 */
type DockerReference = Extract<SourceReference, { transport: 'docker' }>;

export const registrySource: ImageSource<DockerReference> = {
  transport: 'docker',
  open: openRegistryImage,
};
