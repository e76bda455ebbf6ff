/**
 * The one rule of what a grant lacks: the scopes the configuration asks for (ATLASSIAN_SCOPES, with offline_access and
 * read:me, which are always asked for) that the grant does not list, sorted so that one set is always written alike.
 * Scopes Atlassian granted beyond those asked for are no concern of ours.
 */
export function missingScopes(configured: readonly string[], granted: readonly string[]): string[] {
  const have = new Set(granted);
  return [...new Set(configured)].filter((scope) => !have.has(scope)).sort();
}
