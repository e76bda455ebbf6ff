/** A URL fit to print: no password, and no query string (it may carry a token). */
export function printableUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    const query = url.search ? '?…' : '';
    url.search = '';
    url.hash = '';
    return `${url.toString()}${query}`;
  } catch {
    return '(not a URL)';
  }
}
