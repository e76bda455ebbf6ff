import { Module } from '@nestjs/common';
import { OperatorSocketServer } from './operator-socket.js';
import { OperatorController } from './operator.controller.js';
import { OperatorModule } from './operator.module.js';

/** The service's side of the operator's commands on the embedded database: the socket and its routes. */
@Module({
  imports: [OperatorModule],
  controllers: [OperatorController],
  providers: [OperatorSocketServer],
})
export class OperatorServerModule {}
