/** Since when the built-in sandbox at `authUrl` remembers codes: its control route says when it started or was reset. */
export async function sandboxStartedAt(authUrl: string): Promise<Date | undefined> {
  const response = await fetch(`${authUrl}/_control/stats`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) return undefined;
  const { startedAt } = (await response.json()) as { startedAt?: unknown };
  return typeof startedAt === 'string' ? new Date(startedAt) : undefined;
}
