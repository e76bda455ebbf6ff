import { Module } from '@nestjs/common';
import { ProductCallsModule } from '../product-calls/product-calls.module.js';
import { ConnectionsModule } from '../connections/connections.module.js';
import { SitesController } from './sites.controller.js';
import { SitesService } from './sites.service.js';

/** The example product route: what a call to Atlassian on a user's behalf looks like through this service. */
@Module({
  imports: [ConnectionsModule, ProductCallsModule],
  controllers: [SitesController],
  providers: [SitesService],
})
export class SitesModule {}
