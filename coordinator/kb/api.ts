/**
 * The HTTP API of `dockergate serve`: the knowledge-base questions of `queries.ts` as JSON over
 * GET, an OpenAPI document at `/openapi.json`. Read-only. With a token, every `/v1` request must
 * carry `Authorization: Bearer <token>` (compared in constant time); `serve` refuses to listen
 * beyond loopback without one.
 */
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { DockergateError, InvalidInputError } from '../../infra/errors.js';
import type { KnowledgeBase } from '../../store/kb/index.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { fleetReport, libraryReport, pageSize, profileDiff, syscallPage, tagReport } from './queries.js';

export interface KbApiOptions {
  readonly kb: KnowledgeBase;
  /** Required of every /v1 request when set. */
  readonly token?: string;
}

type Query = URLSearchParams;
type Route = { readonly pattern: RegExp; readonly answer: (match: string[], query: Query, url: URL) => Promise<{ body: unknown; headers?: Record<string, string> }> };

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STATUS_OF: Readonly<Record<string, number>> = { 'invalid-input': 400, 'not-found': 404, 'limit-exceeded': 400, unsupported: 400 };

function required(query: Query, name: string): string {
  const value = query.get(name);
  if (!value) throw new InvalidInputError(`query parameter ${name} is required`);
  return value;
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidInputError(`${JSON.stringify(part)} is not a valid URL path segment`);
  }
}

/** The request handler; answers every request, errors included, with JSON. */
export function kbApiHandler(options: KbApiOptions): http.RequestListener {
  const { kb } = options;
  const routes: Route[] = [
    { pattern: /^\/healthz$/, answer: async () => ({ body: { ok: true } }) },
    { pattern: /^\/openapi\.json$/, answer: async () => ({ body: OPENAPI_DOCUMENT }) },
    { pattern: /^\/v1\/libraries\/([^/]+)$/, answer: async ([name], query) => ({ body: await libraryReport(kb, decoded(name!), query.get('export') ?? undefined) }) },
    {
      pattern: /^\/v1\/syscalls\/([^/]+)\/tags$/,
      answer: async ([name], query, url) => {
        const limit = pageSize(query.get('limit') ?? undefined, 100, 'limit');
        const page = await syscallPage(kb, decoded(name!), limit, query.get('after') ?? undefined);
        if (!page.next) return { body: page };
        const next = new URL(url.pathname, 'http://x');
        next.searchParams.set('limit', String(limit));
        next.searchParams.set('after', page.next);
        return { body: page, headers: { link: `<${next.pathname}${next.search}>; rel="next"` } };
      },
    },
    { pattern: /^\/v1\/tags$/, answer: async (_, query) => ({ body: await tagReport(kb, required(query, 'ref')) }) },
    { pattern: /^\/v1\/diff$/, answer: async (_, query) => ({ body: await profileDiff(kb, required(query, 'from'), required(query, 'to')) }) },
    { pattern: /^\/v1\/stats$/, answer: async (_, query) => ({ body: await fleetReport(kb, pageSize(query.get('top') ?? undefined, 10, 'top')) }) },
  ];
  const expected = options.token ? Buffer.from(`Bearer ${options.token}`) : undefined;
  const authorised = (header: string | undefined): boolean => {
    if (!expected) return true;
    const given = Buffer.from(header ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  return (request, response) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      const text = `${JSON.stringify(body, null, 2)}\n`;
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
      response.end(text);
    };
    void (async () => {
      try {
        const url = new URL(request.url ?? '/', 'http://localhost');
        if (request.method !== 'GET' && request.method !== 'HEAD') throw new HttpError(405, 'method-not-allowed', `${request.method} is not allowed: the API is read-only (GET)`);
        const route = routes.find((candidate) => candidate.pattern.test(url.pathname));
        if (!route) throw new HttpError(404, 'not-found', `no route ${url.pathname} (see /openapi.json)`);
        if (url.pathname.startsWith('/v1/') && !authorised(request.headers.authorization)) throw new HttpError(401, 'unauthorized', 'a valid Authorization: Bearer <token> header is required');
        const match = route.pattern.exec(url.pathname)!.slice(1);
        const { body, headers } = await route.answer(match, url.searchParams, url);
        send(200, body, headers);
      } catch (err) {
        if (err instanceof HttpError) send(err.status, { error: { code: err.code, message: err.message } }, err.status === 405 ? { allow: 'GET, HEAD' } : err.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
        else if (err instanceof DockergateError) send(STATUS_OF[err.code] ?? 500, { error: { code: err.code, message: err.message } });
        else send(500, { error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } });
      }
    })();
  };
}

/** Loopback addresses: the API may run there without a token. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

