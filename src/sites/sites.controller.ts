import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../api/api-errors.docs.js';
import { ApiKeyGuard } from '../api/api-key.guard.js';
import { UserIdPipe } from '../api/user-id.pipe.js';
import { CloudIdPipe } from './cloud-id.pipe.js';
import { SitesService } from './sites.service.js';

@ApiTags('sites')
@ApiBearerAuth()
@Controller('v1/users/:userId/sites/:cloudId')
@UseGuards(ApiKeyGuard)
export class SitesController {
  constructor(private readonly sites: SitesService) {}

  @Get('myself')
  @ApiOperation({
    summary: "Example product call: Jira's /rest/api/3/myself on one of the user's sites",
    description:
      "Calls {ATLASSIAN_API_URL}/ex/jira/{cloudId}/rest/api/3/myself with the user's access token (refreshed first when needed; " +
      'after a 401, refreshed once more and retried once). A 429 or an outage at Atlassian is answered at once with 503 and its Retry-After.',
  })
  @ApiParam({ name: 'userId', description: 'Your own id for the user.', example: 'user-42' })
  @ApiParam({
    name: 'cloudId',
    description: 'The site: an id from accessible-resources.',
    example: '1324a887-45db-1bf4-1e99-ef0ff456d421',
  })
  @ApiOkResponse({
    description: "Jira's answer, unchanged.",
    schema: {
      type: 'object',
      additionalProperties: true,
      example: {
        accountId: '712020:5b10ac8d-82e0-4f2f-9a08-e2e8c1a6f1a3',
        accountType: 'atlassian',
        displayName: 'Alice Andersen',
        active: true,
      },
    },
  })
  @ApiErrors(
    'invalid_request',
    'connection_not_found',
    'site_not_found',
    'reauth_required',
    'atlassian_forbidden',
    'atlassian_unavailable',
    'atlassian_error',
    'configuration_error',
  )
  myself(@Param('userId', UserIdPipe) userId: string, @Param('cloudId', CloudIdPipe) cloudId: string): Promise<unknown> {
    return this.sites.jiraMyself(userId, cloudId);
  }
}
