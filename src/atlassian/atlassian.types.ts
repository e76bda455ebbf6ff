export interface TokenSet {
  readonly accessToken: string;
  /** Absent when the app was not granted offline_access (Atlassian then sends none). */
  readonly refreshToken?: string;
  readonly expiresInSeconds: number;
  readonly scopes: readonly string[];
}

export interface AtlassianAccount {
  readonly accountId: string;
  readonly name?: string;
  readonly email?: string;
}

/** A site (cloudId) the user's grant reaches, merged across products. */
export interface AccessibleResource {
  readonly id: string;
  readonly url: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly avatarUrl: string | null;
}
