/** Query parameters that carry a credential or a one-time value; their values never reach a log line. */
const SECRET_QUERY_PARAMS = new Set(['code', 'state', 'ticket', 'access_token', 'refresh_token', 'client_secret']);

/** Paths pino censors in every log object, wherever a token, code or secret could sit. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.clientSecret',
  '*.client_secret',
  '*.code',
  '*.ticket',
  '*.state',
  '*.apiKey',
];

/** The URL with the values of secret query parameters replaced, for logs. */
export function maskUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart < 0) return url;
  const params = url
    .slice(queryStart + 1)
    .split('&')
    .map((pair) => {
      const name = decodeSafely(pair.split('=', 1)[0]);
      return SECRET_QUERY_PARAMS.has(name) ? `${name}=[Redacted]` : pair;
    });
  return `${url.slice(0, queryStart)}?${params.join('&')}`;
}

function decodeSafely(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A short, stable, non-reversible label for an id in logs. */
export function shortId(id: string): string {
  return id.length <= 8 ? id : `${id.slice(0, 8)}…`;
}
