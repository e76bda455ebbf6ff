import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Registry } from 'prom-client';

/** Prometheus' scrape endpoint. */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly registry: Registry) {}

  /**
   * In the registry's own content type (`text/plain; version=0.0.4`): Prometheus 3 refuses to scrape an answer whose
   * type it does not know, and Nest would send a string as text/html.
   */
  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(@Res() res: Response): Promise<void> {
    const body = await this.registry.metrics();
    res.type(this.registry.contentType).send(body);
  }
}
