import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './app.js';

const MAIN = resolve('dist/src/main.js');
const SANDBOX = resolve('dist/src/sandbox/standalone.js');
const READY_TIMEOUT_MS = 60_000;

/** A built program (`npm test` builds first) as a child process, its output in a log file of `logDir`. */
export class ServiceProcess {
  private readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly url: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((done) => child.once('exit', (code) => done(code)));
  }

  static start(name: string, script: string, env: Record<string, string>, logDir: string, url: string): ServiceProcess {
    const logFile = join(logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    try {
      const child = spawn(process.execPath, [script], {
        env: { PATH: process.env.PATH ?? '', ...env },
        cwd: logDir,
        stdio: ['ignore', fd, fd],
      });
      return new ServiceProcess(name, url, child, logFile);
    } finally {
      closeSync(fd);
    }
  }

  async waitFor(path: string, status = 200): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const answered = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(5_000) }).then(
        (r) => r.status,
        () => 0,
      );
      if (answered === status) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${this.name}: ${path} did not answer ${status} within ${READY_TIMEOUT_MS / 1000} s\n${this.tail()}`);
  }

  tail(): string {
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
  }

  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

export interface Deployment {
  readonly sandbox: ServiceProcess;
  readonly replicas: readonly ServiceProcess[];
  readonly apiKey: string;
  stop(): Promise<void>;
}

/**
 * N replicas of the built service on one database, in production mode, with the standalone sandbox identity
 * provider in its own process as Atlassian (shared by every replica, as Atlassian is), short tokens so the refresh
 * daemon works within seconds.
 */
export async function startDeployment(options: {
  databaseUrl: string;
  replicas: number;
  logDir: string;
  accessTokenTtlSeconds: number;
  env?: Record<string, string>;
}): Promise<Deployment> {
  const sandboxPort = await freePort();
  const ports: number[] = [];
  for (let i = 0; i < options.replicas; i += 1) ports.push(await freePort());
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const callbackUrl = `http://127.0.0.1:${ports[0]}/auth/atlassian/callback`;
  const sandbox = ServiceProcess.start(
    'sandbox',
    SANDBOX,
    {
      SANDBOX_PORT: String(sandboxPort),
      SANDBOX_REDIRECT_URIS: callbackUrl,
      SANDBOX_ACCESS_TOKEN_TTL_SECONDS: String(options.accessTokenTtlSeconds),
    },
    options.logDir,
    sandboxUrl,
  );
  await sandbox.waitFor('/sandbox/_control/stats');
  const apiKey = randomBytes(24).toString('hex');
  const keys = `k1:${randomBytes(32).toString('base64')}`;
  const replicas = ports.map((port, index) =>
    ServiceProcess.start(
      `replica-${index}`,
      MAIN,
      {
        NODE_ENV: 'production',
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        DATABASE_URL: options.databaseUrl,
        ATLASSIAN_CLIENT_ID: 'sandbox-client-id',
        ATLASSIAN_CLIENT_SECRET: 'sandbox-client-secret',
        ATLASSIAN_AUTH_URL: `${sandboxUrl}/sandbox`,
        ATLASSIAN_API_URL: `${sandboxUrl}/sandbox`,
        ATLASSIAN_CALLBACK_URL: callbackUrl,
        API_KEYS: apiKey,
        TOKEN_ENCRYPTION_KEYS: keys,
        LOG_LEVEL: 'warn',
        ...options.env,
      },
      options.logDir,
      `http://127.0.0.1:${port}`,
    ),
  );
  await Promise.all(replicas.map((replica) => replica.waitFor('/health/ready')));
  return {
    sandbox,
    replicas,
    apiKey,
    stop: async () => {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await sandbox.stop();
    },
  };
}

/**
 * One user through the connect flow as the SaaS backend and a browser do it: a link minted on `minting`, consent at the
 * sandbox (its direct authorize stands in for the consent page), the callback on `finishing`.
 */
export async function connectSandboxUser(
  deployment: Deployment,
  user: { userId: string; login: string },
  minting = deployment.replicas[0],
  finishing = deployment.replicas[deployment.replicas.length - 1],
): Promise<void> {
  const linkAnswer = await fetch(`${minting.url}/v1/users/${encodeURIComponent(user.userId)}/connect`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${deployment.apiKey}` },
  });
  if (linkAnswer.status !== 201) throw new Error(`connect link: HTTP ${linkAnswer.status}`);
  const link = (await linkAnswer.json()) as { url: string };
  const start = await fetch(link.url, { redirect: 'manual' });
  if (start.status !== 302) throw new Error(`connect link opened: HTTP ${start.status}`);
  const cookie = start.headers
    .getSetCookie()
    .map((header) => header.split(';')[0])
    .join('; ');
  const params = new URL(start.headers.get('location')!).searchParams;
  const consent = await fetch(`${deployment.sandbox.url}/sandbox/_control/authorize`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      user: user.login,
      redirect_uri: params.get('redirect_uri'),
      scope: params.get('scope'),
      state: params.get('state'),
    }),
  });
  if (consent.status !== 200) throw new Error(`sandbox authorize: HTTP ${consent.status}`);
  const { code } = (await consent.json()) as { code: string };
  const callback = new URL(`${finishing.url}${new URL(params.get('redirect_uri')!).pathname}`);
  callback.searchParams.set('code', code);
  callback.searchParams.set('state', params.get('state')!);
  const done = await fetch(callback, { headers: { Cookie: cookie }, redirect: 'manual' });
  await done.body?.cancel();
  if (done.status !== 200) throw new Error(`callback: HTTP ${done.status}`);
}
