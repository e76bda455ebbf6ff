import { createHash, randomBytes, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../common/clock.js';
import type { AtlassianProduct } from '../atlassian/atlassian.client.js';
import { FaultQueue, faultResponse, type FaultEndpoint, type FaultPlan } from './sandbox.faults.js';
import { DEFAULT_APP_NAME, initialSettings, type SandboxOptions, type SandboxSettings } from './sandbox.options.js';
import { SandboxJiraWebhooks, type JiraWebhookStats } from './sandbox.jira-webhooks.js';
import {
  isRecord,
  parseSiteCount,
  readSingle,
  type Checked,
  type DeliveryInput,
  type DirectAuthorizeInput,
  type Latency,
} from './sandbox.params.js';
import { SandboxProducts } from './sandbox.products.js';
import { HourlyQuota, quotaHeaders, rateLimitedHeaders } from './sandbox.rate-limits.js';
import { apiError, oauthError, ok, type SandboxResponse } from './sandbox.responses.js';
import { adHocUser, DEFAULT_AD_HOC_SITES, fixtureUsers, LOGIN_PATTERN, type SandboxSite, type SandboxUser } from './sandbox.users.js';

export const SANDBOX_AUDIENCE = 'api.atlassian.com';

/** Injected so tests can hold a slow call open and release it by hand instead of waiting. */
export type Sleep = (ms: number) => Promise<void>;

export interface AuthorizeRequest {
  audience: string;
  clientId: string;
  redirectUri: string;
  responseType: 'code';
  /** The scopes, de-duplicated and space-separated. */
  scope: string;
  scopes: string[];
  state?: string;
  prompt?: string;
}

export interface AuthorizeError {
  error: string;
  description: string;
}

export type AuthorizeCheck = { ok: true; request: AuthorizeRequest } | { ok: false; error: AuthorizeError };

/** Where the consent form leads: back to the app, to an error page (no redirect), or to the form again. */
export type Decision =
  | { kind: 'redirect'; location: string }
  | { kind: 'invalid'; error: AuthorizeError }
  | { kind: 'retry'; request: AuthorizeRequest; message: string };

export interface TokenAnswer {
  access_token: string;
  expires_in: number;
  token_type: 'Bearer';
  refresh_token?: string;
  scope: string;
}

export interface SandboxStats {
  /** When the sandbox started or was last reset: it knows no code, grant or token from before (ISO time). */
  startedAt: string;
  tokenCalls: { authorization_code: number; refresh_token: number; other: number };
  /** Successful refresh_token grants, including reuse within the leeway. */
  refreshes: number;
  reuseWithinLeeway: number;
  /** Each one revoked a grant. */
  reuseAfterLeeway: number;
  /** Refresh calls that arrived while another refresh of the same grant was still being answered. */
  overlappingRefreshes: number;
  refreshesInFlight: number;
  maxRefreshesInFlight: number;
  /** API calls with an access token past its expiry. */
  expiredAccessTokenUses: number;
  /** API calls with an access token revoked because its refresh token was rotated and the leeway ran out. */
  revokedAccessTokenUses: number;
  codesExchanged: number;
  codeReuse: number;
  grantsRevoked: number;
  /** Refreshes refused because the grant's consent lifetime had ended. */
  consentsExpired: number;
  faultsServed: number;
  pendingFaults: number;
  /** Calls to the API (/me, accessible-resources, product calls), answered whatever way. */
  apiCalls: number;
}

/** One call to the API, as `GET /_control/api-calls` lists them (the latest API_CALL_LOG_SIZE). */
export interface ApiCallRecord {
  at: string;
  method: string;
  /** Under the sandbox's base, e.g. `/ex/jira/<cloudId>/rest/api/3/myself`, without the query. */
  path: string;
  status: number;
}

/** A product REST call on one site, e.g. Jira's `GET /rest/api/3/myself`. */
export interface ProductCall {
  method: string;
  product: AtlassianProduct;
  cloudId: string;
  /** Under `/ex/{product}/{cloudId}`. */
  path: string;
}

const API_CALL_LOG_SIZE = 10_000;

type Counters = Omit<SandboxStats, 'startedAt' | 'tokenCalls' | 'refreshesInFlight' | 'pendingFaults'>;

interface Grant {
  id: string;
  accountId: string;
  scopes: string[];
  revoked: boolean;
  /** The user's latest consent; the grant ends `consentLifetimeSeconds` later. */
  consentedAt: number;
}

interface CodeRecord {
  accountId: string;
  redirectUri: string;
  scopes: string[];
  issuedAt: number;
  used: boolean;
}

interface RefreshRecord {
  grant: Grant;
  issuedAt: number;
  /** The access token issued with it: "the previous pair" that keeps working during the leeway. */
  accessToken: string;
  rotatedAt?: number;
}

interface AccessRecord {
  grant: Grant;
  expiresAt: number;
  /** When its refresh token was rotated; the access token dies once the leeway after that ends. */
  supersededAt?: number;
}

export interface Session {
  grant: Grant;
  user: SandboxUser;
}

const AUTHORIZE_FIELDS = ['audience', 'client_id', 'scope', 'redirect_uri', 'state', 'response_type', 'prompt'] as const;
const DECISION_FIELDS = ['decision', 'user', 'other_user', 'sites'] as const;
const TOKEN_FIELDS = ['grant_type', 'client_id', 'client_secret', 'code', 'redirect_uri', 'refresh_token'] as const;
/** RFC 6749 §3.3 scope-token characters. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const PROFILE_PICTURE = 'https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/default-avatar.png';

/**
 * An in-memory stand-in for auth.atlassian.com and api.atlassian.com for one registered app.
 * It applies Atlassian's documented rules (see ATLASSIAN.md) and counts what clients do, so tests
 * can prove that no refresh token was presented twice and no grant was refreshed twice at once.
 */
export class SandboxIdentityProvider {
  readonly appName: string;
  private readonly fixtures = fixtureUsers();
  private settings: SandboxSettings;
  private latency: Latency;
  private faults: FaultQueue;
  private users: Map<string, SandboxUser>;
  private usersByAccount: Map<string, SandboxUser>;
  private codes: Map<string, CodeRecord>;
  private grantsByAccount: Map<string, Grant>;
  private refreshTokens: Map<string, RefreshRecord>;
  private accessTokens: Map<string, AccessRecord>;
  private refreshesInFlight: Map<string, number>;
  private tokenCalls: SandboxStats['tokenCalls'];
  private counters: Counters;
  private startedAt: Date;
  private quota: HourlyQuota;
  private apiCallLog: ApiCallRecord[];
  /** Jira's and Confluence's resources, as far as the sandbox plays them. */
  readonly products: SandboxProducts;
  /** Jira's dynamic webhooks: registrations, their expiry, and signed deliveries. */
  readonly jiraWebhooks: SandboxJiraWebhooks;

  constructor(
    private readonly options: SandboxOptions,
    private readonly clock: Clock,
    private readonly sleep: Sleep = delay,
  ) {
    if (options.redirectUris.length === 0) throw new Error('The sandbox needs at least one registered redirect URI.');
    this.appName = options.appName ?? DEFAULT_APP_NAME;
    this.products = new SandboxProducts(clock);
    this.jiraWebhooks = new SandboxJiraWebhooks(options.clientId, options.clientSecret);
    this.reset();
  }

  /** Back to the start: fixture users only, no codes, grants or tokens, no faults, initial settings, zero counters. */
  reset(): void {
    this.startedAt = this.clock.now();
    this.settings = initialSettings(this.options);
    this.latency = { tokenMs: 0, apiMs: 0 };
    this.faults = new FaultQueue();
    this.users = new Map();
    this.usersByAccount = new Map();
    this.fixtures.forEach((user) => this.putUser(user));
    this.codes = new Map();
    this.grantsByAccount = new Map();
    this.refreshTokens = new Map();
    this.accessTokens = new Map();
    this.refreshesInFlight = new Map();
    this.tokenCalls = { authorization_code: 0, refresh_token: 0, other: 0 };
    this.counters = {
      refreshes: 0,
      reuseWithinLeeway: 0,
      reuseAfterLeeway: 0,
      overlappingRefreshes: 0,
      maxRefreshesInFlight: 0,
      expiredAccessTokenUses: 0,
      revokedAccessTokenUses: 0,
      codesExchanged: 0,
      codeReuse: 0,
      grantsRevoked: 0,
      consentsExpired: 0,
      faultsServed: 0,
      apiCalls: 0,
    };
    this.quota = new HourlyQuota();
    this.apiCallLog = [];
    this.products.reset();
    this.jiraWebhooks.reset();
  }

  /** The users offered on the consent page. */
  pickableUsers(): SandboxUser[] {
    return this.fixtures;
  }

  findUser(login: string): SandboxUser | undefined {
    return this.users.get(login);
  }

  /**
   * Fixture users keep their sites. Any other valid login is an ad-hoc user, created on first use with one
   * site, and re-created with `sites` sites when a count is given.
   */
  resolveUser(login: string, sites?: number): Checked<SandboxUser> {
    const existing = this.users.get(login);
    if (existing && (sites === undefined || this.fixtures.includes(existing))) return { ok: true, value: existing };
    if (!LOGIN_PATTERN.test(login)) return { ok: false, message: 'A user name is 1 to 40 characters of a-z, 0-9 and -.' };
    const user = adHocUser(login, sites ?? DEFAULT_AD_HOC_SITES);
    this.putUser(user);
    return { ok: true, value: user };
  }

  /** Validates like Atlassian: a request that cannot be trusted gets an error page, never a redirect. */
  checkAuthorize(params: unknown): AuthorizeCheck {
    const read = readSingle(params, AUTHORIZE_FIELDS);
    if (!read.ok) return refuse('invalid_request', `The ${read.field} parameter must be given exactly once.`);
    const { audience, client_id: clientId, redirect_uri: redirectUri, response_type: responseType, state, prompt } = read.values;
    if (clientId !== this.options.clientId) return refuse('unauthorized_client', 'Unknown client_id: no app is registered with it.');
    if (redirectUri === undefined || !this.options.redirectUris.includes(redirectUri)) {
      return refuse('unauthorized_client', 'redirect_uri is not registered for client');
    }
    if (audience !== SANDBOX_AUDIENCE) return refuse('invalid_request', `audience is required and must be ${SANDBOX_AUDIENCE}.`);
    if (responseType !== 'code') return refuse('unsupported_response_type', 'response_type is required and must be code.');
    const scopes = [...new Set((read.values.scope ?? '').split(' ').filter(Boolean))];
    if (scopes.length === 0 || !scopes.every((scope) => SCOPE_TOKEN.test(scope))) {
      return refuse('invalid_scope', 'scope must list one or more scopes separated by spaces.');
    }
    return { ok: true, request: { audience, clientId, redirectUri, responseType, scope: scopes.join(' '), scopes, state, prompt } };
  }

  /** The consent form's submission; it carries the authorize parameters again, so they are checked again. */
  decide(form: unknown): Decision {
    const check = this.checkAuthorize(form);
    if (!check.ok) return { kind: 'invalid', error: check.error };
    const { request } = check;
    const read = readSingle(form, DECISION_FIELDS);
    if (!read.ok)
      return { kind: 'invalid', error: { error: 'invalid_request', description: `The ${read.field} field must be given once.` } };
    const { decision, user = '', other_user: otherUser = '', sites } = read.values;
    if (decision === 'deny') {
      const denied = { error: 'access_denied', error_description: 'User did not authorize the request', state: request.state };
      return { kind: 'redirect', location: withQuery(request.redirectUri, denied) };
    }
    if (decision !== 'accept')
      return { kind: 'invalid', error: { error: 'invalid_request', description: 'decision must be accept or deny.' } };
    const login = otherUser.trim() || user;
    if (!login) return { kind: 'retry', request, message: 'Choose a user to continue as.' };
    const siteCount = parseSiteCount(sites);
    if (!siteCount.ok) return { kind: 'retry', request, message: siteCount.message };
    const resolved = this.resolveUser(login, siteCount.value);
    if (!resolved.ok) return { kind: 'retry', request, message: resolved.message };
    const code = this.issueCode(request, resolved.value);
    return { kind: 'redirect', location: withQuery(request.redirectUri, { code, state: request.state }) };
  }

  /** Consent without the browser, for tests and benchmarks that connect many accounts. */
  authorizeDirect(input: DirectAuthorizeInput): SandboxResponse {
    const check = this.checkAuthorize({
      audience: SANDBOX_AUDIENCE,
      response_type: 'code',
      client_id: input.clientId ?? this.options.clientId,
      redirect_uri: input.redirectUri,
      scope: input.scope,
      state: input.state,
    });
    if (!check.ok) return oauthError(400, check.error.error, check.error.description);
    const user = this.resolveUser(input.user, input.sites);
    if (!user.ok) return oauthError(400, 'invalid_request', user.message);
    return ok({ code: this.issueCode(check.request, user.value), state: input.state, accountId: user.value.accountId });
  }

  /** POST /oauth/token, with a JSON or form-encoded body. */
  token(body: unknown): Promise<SandboxResponse> {
    const fields = isRecord(body) ? body : {};
    this.countTokenCall(fields.grant_type);
    const grant = fields.grant_type === 'refresh_token' ? this.grantOfRefreshToken(fields.refresh_token) : undefined;
    return this.trackRefresh(grant, () => this.withFaults('token', this.latency.tokenMs, () => this.exchange(fields)));
  }

  me(authorization: string | undefined): Promise<SandboxResponse> {
    return this.api(authorization, { method: 'GET', path: '/me' }, ({ grant, user }) =>
      grant.scopes.includes('read:me') ? ok(profileOf(user)) : apiError(401, 'Unauthorized; scope does not match'),
    );
  }

  /** Unordered, as at Atlassian, so clients cannot come to rely on an order. */
  accessibleResources(authorization: string | undefined): Promise<SandboxResponse> {
    return this.api(authorization, { method: 'GET', path: '/oauth/token/accessible-resources' }, ({ user }) => ok(shuffled(user.sites)));
  }

  /** Jira's /rest/api/3/myself; not scope-checked, so the service's default scopes can make this example call. */
  jiraMyself(authorization: string | undefined, cloudId: string): Promise<SandboxResponse> {
    return this.product(authorization, { method: 'GET', product: 'jira', cloudId, path: '/rest/api/3/myself' }, ({ user }, site) =>
      ok(jiraUserOf(user, site)),
    );
  }

  /**
   * A product call on one of the user's sites (404 on any other), metered by the app's hourly quota: its answer, a
   * fault's, or the quota's 429 carries Atlassian's rate-limit headers.
   */
  async product(
    authorization: string | undefined,
    call: ProductCall,
    handle: (session: Session, site: SandboxSite) => SandboxResponse,
  ): Promise<SandboxResponse> {
    const answer = await this.api(
      authorization,
      { method: call.method, path: `/ex/${call.product}/${call.cloudId}${call.path}`, productPath: call.path },
      (session) => {
        const site = session.user.sites.find((candidate) => candidate.id === call.cloudId);
        if (!site) return apiError(404, 'Not Found');
        const reading = this.quota.take(this.nowMs(), this.settings.hourlyQuota);
        if (!reading.allowed) {
          const retryAfter = Math.ceil((reading.resetAtMs - this.nowMs()) / 1000);
          return {
            ...apiError(429, 'Rate limit exceeded'),
            headers: rateLimitedHeaders(retryAfter, 'jira-quota-global-based', this.nowMs()),
          };
        }
        return handle(session, site);
      },
    );
    const quota = quotaHeaders(this.quota.peek(this.nowMs(), this.settings.hourlyQuota), this.nowMs());
    return { ...answer, headers: { ...quota, ...answer.headers } };
  }

  /**
   * Jira's `/rest/api/3/webhook` calls as the user: register (POST), list (GET, `input` is the query), delete (DELETE)
   * and extend (PUT `/refresh`), metered like every product call.
   */
  jiraWebhookCall(
    authorization: string | undefined,
    call: ProductCall,
    action: 'register' | 'list' | 'remove' | 'refresh',
    input: unknown,
  ): Promise<SandboxResponse> {
    return this.product(authorization, call, ({ user }, site) => {
      const lifetime = this.settings.jiraWebhookLifetimeSeconds;
      switch (action) {
        case 'register':
          return this.jiraWebhooks.register(site, user.accountId, input, this.nowMs(), lifetime);
        case 'list':
          return this.jiraWebhooks.list(site, user.accountId, isRecord(input) ? input : {}, this.nowMs());
        case 'remove':
          return this.jiraWebhooks.remove(site, user.accountId, input, this.nowMs());
        case 'refresh':
          return this.jiraWebhooks.refresh(site, user.accountId, input, this.nowMs(), lifetime);
      }
    });
  }

  jiraWebhookStats(): JiraWebhookStats {
    return this.jiraWebhooks.stats(this.nowMs());
  }

  /** Something changes on a made-up site: Jira's signed delivery to every registration it matches. */
  async deliverJiraEvent(input: DeliveryInput): Promise<SandboxResponse> {
    const site = [...this.users.values()].flatMap((user) => user.sites).find((candidate) => candidate.id === input.cloudId);
    if (!site) return apiError(404, 'No sandbox user has that site.');
    const report = await this.jiraWebhooks.deliver(
      site,
      {
        cloudId: site.id,
        webhookEvent: input.webhookEvent ?? 'jira:issue_updated',
        issueKey: input.issueKey ?? 'SBX-1',
        duplicate: input.duplicate ?? Math.random() < this.settings.jiraWebhookDuplicateRate,
      },
      this.nowMs(),
    );
    return ok(report);
  }

  /** The latest API calls, oldest first. */
  apiCalls(): ApiCallRecord[] {
    return [...this.apiCallLog];
  }

  addFault(plan: FaultPlan): { pendingFaults: number } {
    this.faults.add(plan, this.nowMs());
    return { pendingFaults: this.faults.pending(this.nowMs()) };
  }

  setLatency(latency: Partial<Latency>): Latency {
    this.latency = { ...this.latency, ...latency };
    return { ...this.latency };
  }

  /** TTLs apply to what is issued afterwards; the leeway, inactivity and consent limits apply at once. */
  updateSettings(settings: Partial<SandboxSettings>): SandboxSettings {
    this.settings = { ...this.settings, ...settings };
    return { ...this.settings };
  }

  /** The user removes the app under "Connected apps": every token of the grant stops working. */
  revokeAccount(accountIdOrLogin: string): boolean {
    const accountId = this.users.get(accountIdOrLogin)?.accountId ?? accountIdOrLogin;
    const grant = this.grantsByAccount.get(accountId);
    if (!grant || grant.revoked) return false;
    this.revoke(grant);
    return true;
  }

  stats(): SandboxStats {
    return {
      startedAt: this.startedAt.toISOString(),
      tokenCalls: { ...this.tokenCalls },
      ...this.counters,
      refreshesInFlight: this.inFlightTotal(),
      pendingFaults: this.faults.pending(this.nowMs()),
    };
  }

  private putUser(user: SandboxUser): void {
    this.users.set(user.login, user);
    this.usersByAccount.set(user.accountId, user);
  }

  private issueCode(request: AuthorizeRequest, user: SandboxUser): string {
    const code = secret('code');
    this.codes.set(code, {
      accountId: user.accountId,
      redirectUri: request.redirectUri,
      scopes: request.scopes,
      issuedAt: this.nowMs(),
      used: false,
    });
    return code;
  }

  private countTokenCall(grantType: unknown): void {
    if (grantType === 'authorization_code' || grantType === 'refresh_token') this.tokenCalls[grantType] += 1;
    else this.tokenCalls.other += 1;
  }

  private grantOfRefreshToken(token: unknown): Grant | undefined {
    return typeof token === 'string' ? this.refreshTokens.get(token)?.grant : undefined;
  }

  /** In-flight counting spans the whole call, so only latency, faults or other async work can make calls overlap. */
  private async trackRefresh(grant: Grant | undefined, work: () => Promise<SandboxResponse>): Promise<SandboxResponse> {
    if (!grant) return work();
    const inFlight = this.refreshesInFlight.get(grant.id) ?? 0;
    if (inFlight > 0) this.counters.overlappingRefreshes += 1;
    this.refreshesInFlight.set(grant.id, inFlight + 1);
    this.counters.maxRefreshesInFlight = Math.max(this.counters.maxRefreshesInFlight, this.inFlightTotal());
    try {
      return await work();
    } finally {
      const remaining = (this.refreshesInFlight.get(grant.id) ?? 1) - 1;
      if (remaining > 0) this.refreshesInFlight.set(grant.id, remaining);
      else this.refreshesInFlight.delete(grant.id);
    }
  }

  private inFlightTotal(): number {
    return [...this.refreshesInFlight.values()].reduce((sum, count) => sum + count, 0);
  }

  private async withFaults(
    endpoint: FaultEndpoint,
    latencyMs: number,
    work: () => SandboxResponse,
    productPath?: string,
  ): Promise<SandboxResponse> {
    const fault = this.faults.take(endpoint, this.nowMs(), productPath);
    if (fault) this.counters.faultsServed += 1;
    await this.pause(latencyMs);
    if (fault?.status !== undefined) {
      await this.pause(fault.timeoutMs ?? 0);
      return faultResponse(endpoint, { ...fault, status: fault.status }, this.nowMs());
    }
    const answer = work();
    await this.pause(fault?.timeoutMs ?? 0);
    return answer;
  }

  private pause(ms: number): Promise<void> {
    return ms > 0 ? this.sleep(ms) : Promise.resolve();
  }

  private exchange(body: Record<string, unknown>): SandboxResponse {
    const read = readSingle(body, TOKEN_FIELDS);
    if (!read.ok) return oauthError(400, 'invalid_request', `${read.field} must be given once, as a string.`);
    const fields = read.values;
    if (fields.grant_type !== 'authorization_code' && fields.grant_type !== 'refresh_token') {
      return oauthError(400, 'unsupported_grant_type', 'grant_type must be authorization_code or refresh_token.');
    }
    if (!this.isClient(fields.client_id, fields.client_secret)) return oauthError(401, 'access_denied', 'Unauthorized');
    return fields.grant_type === 'authorization_code'
      ? this.redeemCode(fields.code, fields.redirect_uri)
      : this.refresh(fields.refresh_token);
  }

  private isClient(clientId: string | undefined, clientSecret: string | undefined): boolean {
    return clientId === this.options.clientId && clientSecret !== undefined && sameSecret(clientSecret, this.options.clientSecret);
  }

  /**
   * The first exchange attempt spends a code whatever its outcome (single use, RFC 6749 §4.1.2), so a
   * duplicated callback shows up in `codeReuse`. Tokens already issued from it stay valid: nothing
   * documents Atlassian revoking them.
   */
  private redeemCode(code: string | undefined, redirectUri: string | undefined): SandboxResponse {
    const record = code === undefined ? undefined : this.codes.get(code);
    if (!record) return invalidCode();
    if (record.used) {
      this.counters.codeReuse += 1;
      return invalidCode();
    }
    record.used = true;
    if (this.hasElapsed(record.issuedAt, this.settings.codeTtlSeconds)) {
      return oauthError(400, 'invalid_request', 'authorization_code is invalid');
    }
    if (redirectUri !== record.redirectUri) return invalidCode();
    this.counters.codesExchanged += 1;
    return ok(this.issueTokens(this.grantFor(record.accountId, record.scopes)));
  }

  /**
   * One grant per app and account, as at Atlassian. A new consent on a live grant takes the new scopes, starts its
   * year again, and adds fresh tokens beside the existing ones (nothing documents Atlassian revoking those). After a
   * revocation or the end of its consent, consent starts a new grant that the old end does not touch.
   */
  private grantFor(accountId: string, scopes: string[]): Grant {
    const current = this.grantsByAccount.get(accountId);
    if (current && !current.revoked && !this.consentEnded(current)) {
      current.scopes = scopes;
      current.consentedAt = this.nowMs();
      return current;
    }
    const grant: Grant = { id: randomUUID(), accountId, scopes, revoked: false, consentedAt: this.nowMs() };
    this.grantsByAccount.set(accountId, grant);
    return grant;
  }

  private refresh(presented: string | undefined): SandboxResponse {
    const record = presented === undefined ? undefined : this.refreshTokens.get(presented);
    if (!record || record.grant.revoked) return invalidRefreshToken();
    if (this.consentEnded(record.grant)) {
      this.counters.consentsExpired += 1;
      return invalidRefreshToken();
    }
    if (record.rotatedAt !== undefined) return this.reuseRotated(record, record.rotatedAt);
    if (this.hasElapsed(record.issuedAt, this.settings.refreshInactivitySeconds)) return invalidRefreshToken();
    this.rotate(record);
    this.counters.refreshes += 1;
    return ok(this.issueTokens(record.grant));
  }

  /** With refresh tokens omitted nothing replaces the presented one, so it must stay usable. */
  private rotate(record: RefreshRecord): void {
    if (this.settings.omitRefreshToken) return;
    record.rotatedAt = this.nowMs();
    const access = this.accessTokens.get(record.accessToken);
    if (access) access.supersededAt = record.rotatedAt;
  }

  /** Within the leeway the previous pair still works; after it, reuse looks like theft and the whole grant goes. */
  private reuseRotated(record: RefreshRecord, rotatedAt: number): SandboxResponse {
    if (this.hasElapsed(rotatedAt, this.settings.reuseLeewaySeconds)) {
      this.counters.reuseAfterLeeway += 1;
      this.revoke(record.grant);
      return invalidRefreshToken();
    }
    this.counters.reuseWithinLeeway += 1;
    this.counters.refreshes += 1;
    return ok(this.issueTokens(record.grant));
  }

  private revoke(grant: Grant): void {
    grant.revoked = true;
    this.counters.grantsRevoked += 1;
  }

  private issueTokens(grant: Grant): TokenAnswer {
    const now = this.nowMs();
    const ttl = this.settings.accessTokenTtlSeconds;
    const accessToken = secret('at');
    this.accessTokens.set(accessToken, { grant, expiresAt: now + ttl * 1000 });
    const answer: TokenAnswer = { access_token: accessToken, expires_in: ttl, token_type: 'Bearer', scope: grant.scopes.join(' ') };
    if (grant.scopes.includes('offline_access') && !this.settings.omitRefreshToken) {
      answer.refresh_token = secret('rt');
      this.refreshTokens.set(answer.refresh_token, { grant, issuedAt: now, accessToken });
    }
    return answer;
  }

  private async api(
    authorization: string | undefined,
    call: Pick<ApiCallRecord, 'method' | 'path'> & { productPath?: string },
    handle: (session: Session) => SandboxResponse,
  ): Promise<SandboxResponse> {
    this.counters.apiCalls += 1;
    const answer = await this.withFaults(
      'api',
      this.latency.apiMs,
      () => {
        const session = this.authenticate(authorization);
        return session ? handle(session) : apiError(401, 'Unauthorized');
      },
      call.productPath,
    );
    this.apiCallLog.push({ at: this.clock.now().toISOString(), method: call.method, path: call.path, status: answer.status });
    if (this.apiCallLog.length > API_CALL_LOG_SIZE) this.apiCallLog.splice(0, this.apiCallLog.length - API_CALL_LOG_SIZE);
    return answer;
  }

  private authenticate(authorization: string | undefined): Session | undefined {
    const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    const record = token === undefined ? undefined : this.accessTokens.get(token);
    if (!record || record.grant.revoked || this.consentEnded(record.grant)) return undefined;
    if (this.nowMs() >= record.expiresAt) {
      this.counters.expiredAccessTokenUses += 1;
      return undefined;
    }
    if (record.supersededAt !== undefined && this.hasElapsed(record.supersededAt, this.settings.reuseLeewaySeconds)) {
      this.counters.revokedAccessTokenUses += 1;
      return undefined;
    }
    const user = this.usersByAccount.get(record.grant.accountId);
    return user && { grant: record.grant, user };
  }

  private nowMs(): number {
    return this.clock.now().getTime();
  }

  /** Atlassian ends every grant a year after the user's latest consent, refreshed or not. */
  private consentEnded(grant: Grant): boolean {
    return this.hasElapsed(grant.consentedAt, this.settings.consentLifetimeSeconds);
  }

  private hasElapsed(sinceMs: number, seconds: number): boolean {
    return this.nowMs() - sinceMs >= seconds * 1000;
  }
}

function refuse(error: string, description: string): AuthorizeCheck {
  return { ok: false, error: { error, description } };
}

function invalidCode(): SandboxResponse {
  return oauthError(403, 'invalid_grant', 'Invalid authorization code');
}

function invalidRefreshToken(): SandboxResponse {
  return oauthError(403, 'invalid_grant', 'Unknown or invalid refresh token.');
}

function secret(kind: 'code' | 'at' | 'rt'): string {
  return `sbx_${kind}_${randomBytes(32).toString('base64url')}`;
}

/** Hashing first gives timingSafeEqual equal lengths, so the comparison leaks neither content nor length. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Percent-encodes with %20 for spaces, the form Atlassian's own redirects use. */
function withQuery(base: string, params: Record<string, string | undefined>): string {
  const query = Object.entries(params)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
    .join('&');
  return `${base}${base.includes('?') ? '&' : '?'}${query}`;
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index -= 1) {
    const other = randomInt(index + 1);
    [copy[index], copy[other]] = [copy[other], copy[index]];
  }
  return copy;
}

function profileOf(user: SandboxUser): Record<string, unknown> {
  return {
    account_type: 'atlassian',
    account_id: user.accountId,
    email: user.email,
    name: user.name,
    picture: PROFILE_PICTURE,
    account_status: 'active',
    nickname: user.login,
    zoneinfo: 'Europe/Berlin',
    locale: 'en-US',
    extended_profile: { job_title: 'Sandbox user', organization: 'Sandbox', department: 'Testing' },
  };
}

function jiraUserOf(user: SandboxUser, site: SandboxSite): Record<string, unknown> {
  return {
    self: `${site.url}/rest/api/3/user?accountId=${encodeURIComponent(user.accountId)}`,
    accountId: user.accountId,
    accountType: 'atlassian',
    emailAddress: user.email,
    displayName: user.name,
    active: true,
    timeZone: 'Europe/Berlin',
    locale: 'en_US',
  };
}
