/**
 * Pieces of registry authentication that need no network: parsing `WWW-Authenticate`
 * (RFC 9110 §11.6.1: challenges with auth-params or a token68) and the distribution token
 * response, building `Authorization` values, and summarising registry error bodies.
 * Everything parsed here comes from the registry and is untrusted.
 */
import type { RegistryCredentials } from './docker-config.js';

export interface AuthChallenge {
  /** Lower-cased scheme: `bearer`, `basic`, ... */
  readonly scheme: string;
  /** Lower-cased parameter names; the first occurrence of a name wins. */
  readonly params: Readonly<Record<string, string>>;
  readonly token68?: string;
}

/** Longer headers are cut (Node's HTTP parser bounds headers anyway, at 16 KiB by default). */
const MAX_HEADER_CHARS = 16 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*/;
/** A parameter starts here: `name`, optional whitespace, `=` not followed by another `=`. */
const PARAM_AHEAD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=(?!=)/;

/**
 * Parses every challenge of a `WWW-Authenticate` value. Lenient where registries are sloppy
 * (unquoted values containing `/` or `:`, unterminated quotes, stray commas) and never throws.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const text = header.slice(0, MAX_HEADER_CHARS);
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const n = text.length;
  const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';
  const skipSpace = (): void => {
    while (i < n && isSpace(text[i])) i++;
  };
  const skipSeparators = (): void => {
    while (i < n && (text[i] === ',' || isSpace(text[i]))) i++;
  };
  const match = (pattern: RegExp): string => {
    const found = pattern.exec(text.slice(i));
    if (!found) return '';
    i += found[0].length;
    return found[0];
  };
  const quoted = (): string => {
    let value = '';
    i++; // opening quote
    while (i < n) {
      const c = text[i]!;
      if (c === '\\' && i + 1 < n) {
        value += text[i + 1];
        i += 2;
      } else if (c === '"') {
        i++;
        return value;
      } else {
        value += c;
        i++;
      }
    }
    return value; // unterminated: take the rest
  };

  while (i < n) {
    skipSeparators();
    if (i >= n) break;
    const scheme = match(TOKEN);
    if (!scheme) {
      // Not a challenge: skip to the next list element.
      while (i < n && text[i] !== ',') i++;
      continue;
    }
    const params: Record<string, string> = {};
    let token68: string | undefined;
    let first = true;
    for (;;) {
      skipSpace();
      if (i >= n) break;
      if (text[i] === ',') {
        const save = i;
        skipSeparators();
        if (i < n && PARAM_AHEAD.test(text.slice(i))) continue;
        i = save; // the next element is a new challenge
        break;
      }
      if (PARAM_AHEAD.test(text.slice(i))) {
        const name = match(TOKEN).toLowerCase();
        skipSpace();
        i++; // '='
        skipSpace();
        const value = text[i] === '"' ? quoted() : match(/^[^,\s]*/);
        if (!Object.hasOwn(params, name)) params[name] = value;
        first = false;
        continue;
      }
      if (first) {
        const value = match(TOKEN68);
        first = false;
        if (value) {
          token68 = value;
          continue;
        }
      }
      break; // a new challenge (or garbage, skipped by the outer loop)
    }
    challenges.push({ scheme: scheme.toLowerCase(), params, ...(token68 !== undefined ? { token68 } : {}) });
  }
  return challenges;
}

export function basicAuthorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

/** Characters allowed in a bearer token we put in a header (visible ASCII, no spaces). */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/**
 * The token of a distribution token-server response (`token`, or the OAuth2 `access_token`);
 * undefined when there is none or it could not be sent in a header.
 */
export function tokenFromResponse(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const record = body as Record<string, unknown>;
  for (const value of [record.token, record.access_token]) {
    if (typeof value === 'string' && value !== '' && value.length <= 64 * 1024 && HEADER_SAFE.test(value)) return value;
  }
  return undefined;
}

const MAX_SUMMARY_CHARS = 300;

/**
 * A short, printable summary of a registry error body: the distribution-spec `errors` list
 * (`CODE: message`) when it is one, else the text itself, trimmed.
 */
export function summariseErrorBody(body: Uint8Array): string {
  const text = Buffer.from(body).toString('utf8');
  let summary = text;
  try {
    const parsed = JSON.parse(text) as unknown;
    const errors = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).errors : undefined;
    if (Array.isArray(errors)) {
      const parts = errors
        .map((entry) => {
          if (typeof entry !== 'object' || entry === null) return '';
          const { code, message } = entry as Record<string, unknown>;
          return [code, message].filter((part): part is string => typeof part === 'string' && part !== '').join(': ');
        })
        .filter(Boolean);
      if (parts.length > 0) summary = parts.join('; ');
    }
  } catch {
    // not JSON: keep the text
  }
  // eslint-disable-next-line no-control-regex
  const clean = summary.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return clean.length > MAX_SUMMARY_CHARS ? `${clean.slice(0, MAX_SUMMARY_CHARS)}…` : clean;
}
