import { createHash } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AppConfig } from '../config/app-config.js';

/** Set on every request that came through the operator socket; the operator routes answer nothing else. */
export const OPERATOR_REQUEST = Symbol('OPERATOR_REQUEST');

/** What a Unix socket path may hold on every system we run on (Linux allows 107 bytes, macOS 103). */
const MAX_SOCKET_PATH = 100;

/**
 * Where the service that holds the embedded database under `dataDir` listens for the operator's commands: beside the
 * database, or, when that path is too long for a socket, in the temporary directory under a name derived from it.
 */
export function operatorSocketPath(dataDir: string): string {
  const name = `atlassian-token-service-${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`;
  if (process.platform === 'win32') return `\\\\.\\pipe\\${name}`;
  const beside = join(dataDir, 'operator.sock');
  return Buffer.byteLength(beside) <= MAX_SOCKET_PATH ? beside : join(tmpdir(), `${name}.sock`);
}

export function isOperatorRequest(request: IncomingMessage): boolean {
  return (request as IncomingMessage & { [OPERATOR_REQUEST]?: boolean })[OPERATOR_REQUEST] === true;
}

/**
 * The embedded database belongs to the one process that opened it, so `npm run cli` beside a running service asks the
 * service instead of opening it. The service answers on a Unix socket beside the database, which only the user who
 * runs it can open; the routes it serves (src/operator) answer nothing on the HTTP port. With DATABASE_URL there is no
 * socket: every process opens the database server itself.
 */
@Injectable()
export class OperatorSocketServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OperatorSocketServer.name);
  private server: Server | null = null;
  private path = '';

  constructor(
    private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.database.url) return;
    this.path = operatorSocketPath(this.config.dataDir);
    const handle = this.adapterHost.httpAdapter.getInstance<(request: IncomingMessage, response: unknown) => void>();
    const server = createServer((request, response) => {
      (request as IncomingMessage & { [OPERATOR_REQUEST]?: boolean })[OPERATOR_REQUEST] = true;
      handle(request, response);
    });
    // This process holds the embedded database's lock, so a socket left here belongs to a predecessor that died.
    if (process.platform !== 'win32') rmSync(this.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    if (process.platform !== 'win32') chmodSync(this.path, 0o600);
    this.server = server;
    this.logger.debug(`Operator commands are answered on ${this.path}`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (process.platform !== 'win32') rmSync(this.path, { force: true });
  }
}
