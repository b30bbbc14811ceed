/** The OpenAPI 3.1 document of the knowledge-base API (`GET /openapi.json` of `dockergate serve`). */
import { PACKAGE_VERSION } from '../../infra/versions.js';
import { MAX_PAGE } from './queries.js';

const error = { $ref: '#/components/responses/Error' };
const json = (description: string, schema: object = { type: 'object' }) => ({ description, content: { 'application/json': { schema } } });
const param = (name: string, where: 'path' | 'query', description: string, schema: object = { type: 'string' }, required = where === 'path') => ({ name, in: where, required, description, schema });
const limit = param('limit', 'query', 'items per page', { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 });
const after = param('after', 'query', 'the `next` cursor of the previous page');

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'dockergate knowledge base',
    version: PACKAGE_VERSION,
    description: 'Read-only questions across every image, tag and object dockergate has seen. Errors are `{ "error": { "code", "message" } }`. Beyond loopback every /v1 request needs `Authorization: Bearer <token>`.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    responses: { Error: json('an error: 400 bad parameter, 401 no or wrong token, 404 unknown name or route, 405 not GET', { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } } }) },
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': { get: { summary: 'liveness', security: [], responses: { 200: json('the server answers') } } },
    '/v1/libraries/{name}': {
      get: {
        summary: 'a library by soname, path (URL-encoded; its file name is the soname) or sha256: its versions and what their exports reach',
        parameters: [param('name', 'path', 'libc.so.6, a path, or a sha256'), param('export', 'query', 'only this export, e.g. getaddrinfo', { type: 'string' }, false)],
        responses: { 200: json('versions seen, with exports and their syscalls'), 400: error, 404: error },
      },
    },
    '/v1/syscalls/{name}/tags': {
      get: {
        summary: 'tags whose current profile allows the syscall, with one witness each (paged; `Link: rel="next"` too)',
        parameters: [param('name', 'path', 'a syscall, e.g. ptrace'), limit, after],
        responses: { 200: json('`items` and, unless last, `next`'), 400: error },
      },
    },
    '/v1/tags': { get: { summary: 'one tag: digest, profiles per platform, history', parameters: [param('ref', 'query', 'registry/repository:tag', { type: 'string' }, true)], responses: { 200: json('the tag and its history'), 400: error, 404: error } } },
    '/v1/diff': {
      get: {
        summary: 'the syscalls two profiles differ by, with witnesses',
        parameters: [param('from', 'query', 'registry/repository:tag or registry/repository@sha256:…', { type: 'string' }, true), param('to', 'query', 'the same', { type: 'string' }, true)],
        responses: { 200: json('added and removed syscalls'), 400: error, 404: error },
      },
    },
    '/v1/stats': { get: { summary: 'fleet statistics', parameters: [param('top', 'query', 'entries per list', { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 10 })], responses: { 200: json('counts and top lists'), 400: error } } },
  },
} as const;
