import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { TokenSet } from '../atlassian/atlassian.types.js';
import type { Clock } from '../common/clock.js';
import type { AppConfig } from '../config/app-config.js';
import { diagnoseRejectedCode, type Verdict } from '../oauth/callback-diagnosis.js';
import type { OAuthStateRecord } from '../oauth/oauth-states.repository.js';
import { ENDED_WITHOUT_CODE } from '../oauth/connect-failure.js';
import { hashSecret } from '../oauth/secrets.js';
import { type Check, type CheckStatus, describeDuration, hasFailure, maskValue, type Print, printChecks } from './cli-output.js';
import { parseCallbackUrl, type ParsedCallback } from './callback-url.js';

export interface ExplainDependencies {
  readonly print: Print;
  readonly clock: Clock;
  readonly config: AppConfig;
  /** oauth_states by the SHA-256 of the state. */
  readonly findState: (stateHash: string) => Promise<OAuthStateRecord | undefined>;
  /** Present with --exchange: sends the code to Atlassian's token endpoint, as the callback would. */
  readonly exchange?: (code: string) => Promise<TokenSet>;
  /** In sandbox mode: since when the sandbox remembers codes (it keeps them in memory; a restart forgets them). */
  readonly sandboxStartedAt?: () => Promise<Date | undefined>;
}

interface FoundState {
  readonly record: OAuthStateRecord;
  readonly undoing: string;
}

/** The sandbox keeps its codes in memory: a code issued before it last started is unknown to it, whatever else holds. */
async function sandboxForgot(record: OAuthStateRecord, now: Date, deps: ExplainDependencies): Promise<Check | undefined> {
  if (!deps.config.atlassian.sandbox || !deps.sandboxStartedAt) return undefined;
  const startedAt = await deps.sandboxStartedAt().catch(() => undefined);
  if (!startedAt || startedAt.getTime() <= record.createdAt.getTime()) return undefined;
  const ago = (at: Date) => describeDuration(now.getTime() - at.getTime());
  return {
    status: 'fail',
    text: `The sandbox forgot this code: it started again ${ago(startedAt)} ago (${startedAt.toISOString()}), after this sign-in began ${ago(record.createdAt)} ago, and it keeps its codes in memory only`,
    fix: 'Start a new sign-in; the sandbox issues a new code.',
  };
}

const VERDICT_LABELS: Record<Verdict, string> = { likely: 'likely', possible: 'possible', unlikely: 'unlikely', ruled_out: 'ruled out' };
const VERDICT_STATUS: Record<Verdict, CheckStatus> = { likely: 'fail', possible: 'warn', unlikely: 'ok', ruled_out: 'ok' };

/** `explain-callback '<url>' [--exchange]`: what this callback carried, what became of its state, and why it may fail. */
export async function explainCallback(url: string, deps: ExplainDependencies): Promise<number> {
  const { print, config } = deps;
  const parsed = parseCallbackUrl(url);
  const checks: Check[] = [];
  const report = (section: readonly Check[]) => {
    printChecks(print, section);
    checks.push(...section);
  };

  print('Callback URL');
  if (parsed.location) print(`  location: ${parsed.location}`);
  if (parsed.code !== undefined) print(`  code:     ${maskValue(parsed.code)}`);
  if (parsed.state !== undefined) print(`  state:    ${maskValue(parsed.state)}`);
  if (parsed.otherParameters.length > 0) print(`  other parameters: ${parsed.otherParameters.join(', ')}`);
  report([...locationCheck(parsed, config), ...parsed.findings]);

  let found: FoundState | undefined;
  if (parsed.state !== undefined) {
    print('');
    print('State');
    try {
      found = await findState(parsed, deps);
      report(stateChecks(found, parsed, deps.clock.now(), config));
    } catch (error) {
      report([{ status: 'fail', text: `State not looked up: ${(error as Error).message}` }]);
      return 1;
    }
  }

  if (deps.exchange) {
    print('');
    print('Exchange (--exchange)');
    report(await exchangeChecks(parsed, found, deps));
  }
  return hasFailure(checks) ? 1 : 0;
}

/** Atlassian sends the browser only to the redirect_uri of the sign-in, so the location tells which one was used. */
function locationCheck(parsed: ParsedCallback, config: AppConfig): Check[] {
  if (!parsed.location) return [];
  const configured = config.atlassian.callbackUrl;
  if (parsed.location === configured) return [{ status: 'ok', text: 'The location is ATLASSIAN_CALLBACK_URL' }];
  return [
    {
      status: 'fail',
      text: `The location differs from ATLASSIAN_CALLBACK_URL (${configured}): this sign-in was started with another redirect_uri`,
      fix: 'Atlassian refuses a code exchanged with a redirect_uri other than the one of its sign-in; start with the same configuration that receives the callback.',
    },
  ];
}

async function findState(parsed: ParsedCallback, deps: ExplainDependencies): Promise<FoundState | undefined> {
  for (const candidate of parsed.stateCandidates) {
    const record = await deps.findState(hashSecret(candidate.value));
    if (record) return { record, undoing: candidate.undoing };
  }
  return undefined;
}

function stateChecks(found: FoundState | undefined, parsed: ParsedCallback, now: Date, config: AppConfig): Check[] {
  if (!found) {
    return [
      {
        status: 'fail',
        text: 'Unknown state: not in oauth_states',
        fix: 'It was issued by another deployment or database, removed after it expired, or altered on its way (see above).',
      },
    ];
  }
  const { record, undoing } = found;
  const ago = (at: Date) => describeDuration(now.getTime() - at.getTime());
  const checks: Check[] = [];
  if (undoing) {
    checks.push({
      status: 'fail',
      text: `Known only after undoing ${undoing}: the URL was altered between Atlassian and this service`,
      fix: 'Find what rewrites the callback URL (proxy, link checker, redirect) and let the query string through untouched.',
    });
  }
  checks.push({
    status: 'ok',
    text: `Known: sign-in started ${ago(record.createdAt)} ago (${record.createdAt.toISOString()}) for user "${record.userId}"`,
  });
  checks.push(
    record.expiresAt.getTime() <= now.getTime()
      ? { status: 'warn', text: `Expired ${ago(record.expiresAt)} ago: a callback with it now is refused`, fix: 'Start a new sign-in.' }
      : { status: 'ok', text: `Not expired: valid for another ${describeDuration(record.expiresAt.getTime() - now.getTime())}` },
  );
  checks.push(
    record.consumedAt
      ? usedState(record, record.consumedAt, parsed, ago)
      : { status: 'ok', text: `Not used yet${record.outcome ? ` (refused before use: ${record.outcome})` : ''}` },
  );
  checks.push(
    record.redirectUri === config.atlassian.callbackUrl
      ? { status: 'ok', text: `redirect_uri sent to /authorize: ${record.redirectUri} (equals ATLASSIAN_CALLBACK_URL)` }
      : {
          status: 'fail',
          text: `redirect_uri sent to /authorize: ${record.redirectUri}; ATLASSIAN_CALLBACK_URL is now ${config.atlassian.callbackUrl}`,
          fix: 'The exchange sends the configured URL and Atlassian expects the one of the sign-in: this code will be refused. Start a new sign-in.',
        },
  );
  return checks;
}

function usedState(record: OAuthStateRecord, consumedAt: Date, parsed: ParsedCallback, ago: (at: Date) => string): Check {
  const used = `Already used ${ago(consumedAt)} ago (outcome: ${record.outcome ?? 'none recorded'})`;
  const answeredWithError = parsed.error !== undefined || (ENDED_WITHOUT_CODE as readonly string[]).includes(record.outcome ?? '');
  if (answeredWithError || parsed.code === undefined) {
    const why = answeredWithError ? 'Atlassian sent an error instead of a code' : 'the callback carried no code';
    return { status: 'warn', text: `${used}: ${why}, so no code was presented` };
  }
  return { status: 'warn', text: `${used}: its code was presented then, and cannot be used again` };
}

async function exchangeChecks(parsed: ParsedCallback, found: FoundState | undefined, deps: ExplainDependencies): Promise<Check[]> {
  if (!parsed.code) return [{ status: 'fail', text: 'Nothing to exchange: the URL has no code' }];
  if (found?.record.consumedAt) {
    return [
      {
        status: 'fail',
        text: 'Not exchanged: the service already presented this code when the callback arrived',
        fix: 'Presenting a code twice can make Atlassian revoke what it issued for it. Start a new sign-in instead.',
      },
    ];
  }
  const now = deps.clock.now();
  try {
    const tokens = await deps.exchange!(parsed.code);
    return [
      {
        status: 'ok',
        text: `Atlassian accepted the code: credentials, redirect_uri and code are right (the tokens were discarded: not shown, not stored; scopes granted: ${tokens.scopes.join(' ') || 'none named'})`,
      },
      tokens.refreshToken
        ? { status: 'ok', text: 'A refresh token came with it (offline_access granted)' }
        : {
            status: 'fail',
            text: 'No refresh token came with it',
            fix: "Add offline_access to the app's scopes; without it a connection dies within an hour.",
          },
    ];
  } catch (error) {
    if (!(error instanceof AtlassianError)) throw error;
    if ((error.kind === 'invalid_grant' || error.kind === 'invalid_request') && found) {
      const forgotten = await sandboxForgot(found.record, now, deps);
      if (forgotten) return [forgotten];
      const diagnosis = diagnoseRejectedCode({
        atlassianError: error.details.error ?? error.kind,
        atlassianDescription: error.details.description,
        stateUsedBefore: false,
        secondsSinceAuthorize: (now.getTime() - found.record.createdAt.getTime()) / 1000,
        authorizeRedirectUri: found.record.redirectUri,
        exchangeRedirectUri: deps.config.atlassian.callbackUrl,
        code: parsed.code,
      });
      return [
        { status: 'fail', text: diagnosis.summary },
        ...diagnosis.causes.map((c): Check => ({
          status: VERDICT_STATUS[c.verdict],
          text: `${VERDICT_LABELS[c.verdict]}: ${c.explanation}`,
        })),
      ];
    }
    if (error.kind === 'client_unauthorized') {
      return [
        {
          status: 'fail',
          text: error.message,
          fix: 'Copy ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET again from the developer console.',
        },
      ];
    }
    return [{ status: 'fail', text: `Atlassian refused or failed: ${error.message}` }];
  }
}
