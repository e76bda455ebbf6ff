import { Module } from '@nestjs/common';
import { ConnectionsModule } from '../connections/connections.module.js';
import { ProductCallsModule } from '../product-calls/product-calls.module.js';
import { ProxyController } from './proxy.controller.js';
import { ProxyMetrics } from './proxy.metrics.js';
import { ProxyService } from './proxy.service.js';

/** Product calls as a user, forwarded: `/v1/users/{userId}/proxy/{product}/{cloudId}/{path…}`. */
@Module({
  imports: [ConnectionsModule, ProductCallsModule],
  controllers: [ProxyController],
  providers: [ProxyService, ProxyMetrics],
})
export class ProxyModule {}
