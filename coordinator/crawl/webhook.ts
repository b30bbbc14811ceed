/** `rescan --webhook`: the summary, POSTed as JSON once the rescan is done. */
import { InvalidInputError, UnavailableError } from '../../infra/errors.js';

/** Time allowed for the receiver to answer. */
const WEBHOOK_TIMEOUT_MS = 30_000;

export function webhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidInputError(`--webhook: ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError(`--webhook: ${url.protocol} URLs are not supported (http or https)`);
  return url;
}

/** POSTs `body` as JSON; a network failure or a non-2xx answer is an `UnavailableError` naming the URL. */
export async function postWebhook(url: URL, body: unknown): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'dockergate' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
  } catch (err) {
    throw new UnavailableError(`webhook ${url.origin}${url.pathname}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  await response.body?.cancel().catch(() => undefined);
  if (!response.ok) throw new UnavailableError(`webhook ${url.origin}${url.pathname} answered HTTP ${response.status}`);
}
