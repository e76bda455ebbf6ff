import { Controller, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../api/api-errors.docs.js';
import { ApiKeyGuard } from '../api/api-key.guard.js';
import { UserIdPipe } from '../api/user-id.pipe.js';
import { ConnectTicketsService } from './connect-tickets.service.js';

export class ConnectLinkDto {
  @ApiProperty({
    description: "Send the user's browser here; it works once.",
    example: 'https://tokens.example.com/auth/atlassian/start?ticket=…',
  })
  url: string;

  @ApiProperty({ description: 'The link stops working at this time (10 minutes after it was made).' })
  expiresAt: Date;
}

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1/users/:userId')
@UseGuards(ApiKeyGuard)
export class ConnectController {
  constructor(private readonly tickets: ConnectTicketsService) {}

  @Post('connect')
  @ApiOperation({ summary: 'A single-use connect link that starts the Atlassian consent for this user' })
  @ApiCreatedResponse({ type: ConnectLinkDto, description: 'A single-use link that starts the Atlassian consent for this user.' })
  @ApiErrors('invalid_request')
  connect(@Param('userId', UserIdPipe) userId: string): Promise<ConnectLinkDto> {
    return this.tickets.mint(userId);
  }
}
