import { Body, Controller, HttpCode, Param, Post, UseFilters, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../api/api-errors.docs.js';
import { ApiKeyGuard } from '../api/api-key.guard.js';
import { UserIdPipe } from '../api/user-id.pipe.js';
import { ApiErrorFilter } from '../common/error.filter.js';
import { AccessTokenRequestDto, AccessTokenResponseDto, DEFAULT_MIN_VALIDITY_SECONDS } from './access-token.dto.js';
import { AccessTokenService } from './access-token.service.js';

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1/users/:userId/access-token')
@UseGuards(ApiKeyGuard)
@UseFilters(ApiErrorFilter)
export class AccessTokenController {
  constructor(private readonly tokens: AccessTokenService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'A valid access token for the user, refreshed on demand if needed, or now with forceRefresh' })
  @ApiOkResponse({ type: AccessTokenResponseDto })
  @ApiErrors('invalid_request', 'connection_not_found', 'reauth_required', 'atlassian_unavailable', 'configuration_error')
  issue(@Param('userId', UserIdPipe) userId: string, @Body() body: AccessTokenRequestDto): Promise<AccessTokenResponseDto> {
    return this.tokens.accessToken(userId, body.minValiditySeconds ?? DEFAULT_MIN_VALIDITY_SECONDS, { forceRefresh: body.forceRefresh });
  }
}
