import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { RefreshHealthIndicator } from '../refresh/refresh.health.js';
import { DatabaseHealthIndicator } from './database.health.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly refresh: RefreshHealthIndicator,
  ) {}

  /** The process is up and serving HTTP; says nothing about its dependencies. */
  @Get('live')
  live() {
    return { status: 'ok' };
  }

  /**
   * Ready for traffic: the database answers and every migration has been applied. 503 otherwise.
   * `refresh` turns `degraded` (still 200) while Atlassian refuses the client credentials.
   */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.database.check('database'), () => this.refresh.check('refresh')]);
  }
}
