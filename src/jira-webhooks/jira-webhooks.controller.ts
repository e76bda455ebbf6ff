import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Put, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../api/api-errors.docs.js';
import { ApiKeyGuard } from '../api/api-key.guard.js';
import { UserIdPipe } from '../api/user-id.pipe.js';
import { JiraWebhooksDto, PutJiraWebhooksDto } from './jira-webhooks.dto.js';
import { JiraWebhooksService } from './jira-webhooks.service.js';

const USER_ID_PARAM = { name: 'userId', description: 'Your own id for the user.', example: 'user-42' };

@ApiTags('jira-webhooks')
@ApiBearerAuth()
@Controller('v1/users/:userId/jira-webhooks')
@UseGuards(ApiKeyGuard)
export class JiraWebhooksController {
  constructor(private readonly webhooks: JiraWebhooksService) {}

  @Get()
  @ApiOperation({ summary: "The user's Jira webhook registrations: site, Jira's id, filter, status, expiry, last delivery, last error" })
  @ApiParam(USER_ID_PARAM)
  @ApiOkResponse({ type: JiraWebhooksDto })
  @ApiErrors('invalid_request', 'connection_not_found')
  describe(@Param('userId', UserIdPipe) userId: string): Promise<JiraWebhooksDto> {
    return this.webhooks.describe(userId);
  }

  @Put()
  @ApiOperation({
    summary: 'States the Jira webhooks wanted for the user: what is missing is registered on their sites, what is not wanted is deleted',
    description:
      'Registers as the user on each of their sites (or those in cloudIds) with the URL PUBLIC_URL/atlassian/jira-webhooks; the ' +
      'service then keeps them alive. A subscription Jira refuses is 400 invalid_subscription with its reason, and nothing is ' +
      'registered for it; a site failing for another reason leaves its entries failing, retried. The grant needs read:jira-work and ' +
      'manage:jira-webhook (409 missing_scopes otherwise, before any call to Jira).',
  })
  @ApiParam(USER_ID_PARAM)
  @ApiOkResponse({ type: JiraWebhooksDto })
  @ApiErrors(
    'invalid_request',
    'invalid_subscription',
    'connection_not_found',
    'site_not_found',
    'reauth_required',
    'missing_scopes',
    'atlassian_unavailable',
    'configuration_error',
  )
  replace(@Param('userId', UserIdPipe) userId: string, @Body() body: PutJiraWebhooksDto): Promise<JiraWebhooksDto> {
    return this.webhooks.replace(userId, body);
  }

  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: "Deletes the user's Jira webhooks at Jira and here" })
  @ApiParam(USER_ID_PARAM)
  @ApiNoContentResponse({ description: 'Deleted; those Jira could not delete right now are deleted by the daemon.' })
  @ApiErrors('invalid_request', 'connection_not_found', 'atlassian_unavailable', 'configuration_error')
  remove(@Param('userId', UserIdPipe) userId: string): Promise<void> {
    return this.webhooks.removeAll(userId);
  }
}
