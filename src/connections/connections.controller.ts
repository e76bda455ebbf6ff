import { Controller, Delete, Get, HttpCode, HttpStatus, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../api/api-errors.docs.js';
import { ApiKeyGuard } from '../api/api-key.guard.js';
import { UserIdPipe } from '../api/user-id.pipe.js';
import { AccessibleResourcesDto, AccessibleResourcesQueryDto } from './accessible-resources.dto.js';
import { AccessibleResourcesService } from './accessible-resources.service.js';
import { ConnectionDto, ConnectionPageDto, ListConnectionsQueryDto } from './connection.dto.js';
import { UserConnectionsService } from './user-connections.service.js';

const USER_ID_PARAM = {
  name: 'userId',
  description: 'Your own id for the user: 1–128 characters of [A-Za-z0-9._:@-].',
  example: 'user-42',
};

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1')
@UseGuards(ApiKeyGuard)
export class ConnectionsController {
  constructor(
    private readonly connections: UserConnectionsService,
    private readonly resources: AccessibleResourcesService,
  ) {}

  @Get('users/:userId/connection')
  @ApiOperation({ summary: "The user's connection: status, account, scopes, token expiry, last refresh and last error (never a token)" })
  @ApiParam(USER_ID_PARAM)
  @ApiOkResponse({ type: ConnectionDto })
  @ApiErrors('invalid_request', 'connection_not_found')
  describe(@Param('userId', UserIdPipe) userId: string): Promise<ConnectionDto> {
    return this.connections.describe(userId);
  }

  @Delete('users/:userId/connection')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: "Forgets the user's tokens and sites and sends the connection.deleted webhook" })
  @ApiParam(USER_ID_PARAM)
  @ApiNoContentResponse({ description: 'Forgotten.' })
  @ApiErrors('invalid_request', 'connection_not_found')
  forget(@Param('userId', UserIdPipe) userId: string): Promise<void> {
    return this.connections.forget(userId);
  }

  @Get('users/:userId/accessible-resources')
  @ApiOperation({ summary: 'The Atlassian sites the user can reach, as stored; refresh=true re-reads them from Atlassian first' })
  @ApiParam(USER_ID_PARAM)
  @ApiOkResponse({ type: AccessibleResourcesDto })
  @ApiErrors(
    'invalid_request',
    'connection_not_found',
    'reauth_required',
    'atlassian_unavailable',
    'atlassian_error',
    'atlassian_forbidden',
    'configuration_error',
  )
  accessibleResources(
    @Param('userId', UserIdPipe) userId: string,
    @Query() query: AccessibleResourcesQueryDto,
  ): Promise<AccessibleResourcesDto> {
    return this.resources.read(userId, { refresh: query.refresh === 'true' });
  }

  @Get('connections')
  @ApiOperation({ summary: 'Pages of connection summaries in userId order, for operators' })
  @ApiOkResponse({ type: ConnectionPageDto })
  @ApiErrors('invalid_request')
  list(@Query() query: ListConnectionsQueryDto): Promise<ConnectionPageDto> {
    return this.connections.list(query);
  }
}
