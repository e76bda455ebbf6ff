import {
  type CanActivate,
  Controller,
  DefaultValuePipe,
  type ExecutionContext,
  Get,
  Injectable,
  NotFoundException,
  Param,
  ParseIntPipe,
  type PipeTransform,
  Query,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import type { OAuthStateRecord } from '../oauth/oauth-states.repository.js';
import type { RefreshStatusSnapshot } from '../refresh/refresh-status.service.js';
import type { OutboxBacklog } from '../webhooks/webhook-delivery.repository.js';
import { isOperatorRequest } from './operator-socket.js';
import { OperatorService, type ServiceDescription } from './operator.service.js';

/** Over HTTP these routes do not exist: only a request that came through the operator socket reaches them. */
@Injectable()
export class OperatorSocketGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    if (isOperatorRequest(request)) return true;
    throw new NotFoundException(`Cannot ${request.method} ${request.url}`);
  }
}

@Injectable()
export class StateHashPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!/^[0-9a-f]{64}$/.test(value)) throw new NotFoundException();
    return value;
  }
}

/** What `npm run cli` asks the service that holds the embedded database (see OperatorSocketServer). */
@ApiExcludeController()
@Controller('operator')
@UseGuards(OperatorSocketGuard)
export class OperatorController {
  constructor(private readonly operator: OperatorService) {}

  @Get('service')
  service(): ServiceDescription {
    return this.operator.describe();
  }

  @Get('server-time')
  async serverTime(): Promise<{ serverTime: Date }> {
    return { serverTime: await this.operator.serverTime() };
  }

  @Get('migrations')
  async migrations(): Promise<{ applied: string[] | null }> {
    return { applied: await this.operator.appliedMigrations() };
  }

  @Get('webhook-backlog')
  webhookBacklog(): Promise<OutboxBacklog> {
    return this.operator.webhookBacklog();
  }

  @Get('refresh-status')
  refreshStatus(@Query('examples', new DefaultValuePipe(10), ParseIntPipe) examples: number): Promise<RefreshStatusSnapshot> {
    return this.operator.refreshStatus(Math.min(Math.max(examples, 0), 100));
  }

  @Get('oauth-states/:stateHash')
  async state(@Param('stateHash', StateHashPipe) stateHash: string): Promise<{ state: OAuthStateRecord | null }> {
    return { state: (await this.operator.findState(stateHash)) ?? null };
  }
}
