import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { pathToFileURL } from 'node:url';
import { assertSandboxAllowed, standaloneConfigFromEnv, type StandaloneConfig } from './sandbox.config.js';
import { SandboxModule } from './sandbox.module.js';

export { assertSandboxAllowed, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET } from './sandbox.config.js';

function banner(baseUrl: string, config: StandaloneConfig): string {
  const rule = '='.repeat(72);
  return [
    rule,
    '  SANDBOX IDENTITY PROVIDER: this is NOT Atlassian.',
    '  Fake users, fake sites and fake tokens, for development and tests only.',
    `  Base URL:       ${baseUrl}`,
    `  Client id:      ${config.options.clientId}`,
    `  Redirect URIs:  ${config.options.redirectUris.join(', ')}`,
    '  Point ATLASSIAN_AUTH_URL and ATLASSIAN_API_URL at the base URL to use it.',
    rule,
  ].join('\n');
}

async function main(): Promise<void> {
  try {
    assertSandboxAllowed(process.env);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  const parsed = standaloneConfigFromEnv(process.env);
  if (!parsed.ok) {
    parsed.problems.forEach((problem) => console.error(problem));
    process.exit(1);
  }
  const { config } = parsed;
  const app = await NestFactory.create<NestExpressApplication>(SandboxModule.register(config.options), { logger: ['error', 'warn'] });
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  await app.listen(config.port);
  console.log(banner(`http://localhost:${config.port}/sandbox`, config));
}

/** Only runs when started as a program, so the main app can import the exports above without side effects. */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(`The sandbox could not start: ${(error as Error).message}`);
    process.exit(1);
  });
}
