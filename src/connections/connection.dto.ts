import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { IsIsoTime } from '../common/validators.js';
import type { ConnectionStatus } from '../connection-store/connection.entity.js';

export const CONNECTION_STATUSES: readonly ConnectionStatus[] = ['active', 'refresh_failing', 'reauth_required'];
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

export class ConnectionDto {
  @ApiProperty({ description: "The SaaS backend's own id for the user.", example: 'user-42' })
  userId: string;

  @ApiProperty({
    enum: CONNECTION_STATUSES,
    description:
      'active; refresh_failing: Atlassian fails transiently, the service keeps retrying; reauth_required: the user must connect again.',
  })
  status: ConnectionStatus;

  @ApiProperty({ description: "The Atlassian account's id.", example: '712020:5b10ac8d-82e0-4f2f-9a08-e2e8c1a6f1a3' })
  atlassianAccountId: string;

  @ApiProperty({ type: [String], description: 'The scopes Atlassian granted.', example: ['read:jira-work', 'offline_access', 'read:me'] })
  scopes: string[];

  @ApiProperty({
    type: [String],
    description:
      'Scopes the service is configured to ask for (ATLASSIAN_SCOPES) that the grant lacks: the app asked for more after the user ' +
      'consented. The user gets them by connecting again.',
    example: [],
  })
  missingScopes: string[];

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the stored access token expires; null without one.',
  })
  accessTokenExpiresAt: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the tokens were last issued (consent or refresh).' })
  lastRefreshedAt: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'The last refresh failure, as a sentence; null when none was recorded.' })
  lastError: string | null;

  @ApiProperty({ type: String, format: 'date-time', description: 'When the user consented to the current grant (a reconnect resets it).' })
  consentedAt: string;

  @ApiProperty({
    type: String,
    format: 'date-time',
    description: 'consentedAt + 365 days: when Atlassian ends the grant whatever the refreshes, unless the user connects again before.',
  })
  consentExpiresAt: string;
}

export class ConnectionPageDto {
  @ApiProperty({ type: [ConnectionDto] })
  items: ConnectionDto[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as cursor for the next page; null on the last page.' })
  nextCursor: string | null;
}

export class ListConnectionsQueryDto {
  @ApiPropertyOptional({ enum: CONNECTION_STATUSES, description: 'Only connections in this status.' })
  @IsOptional()
  @IsIn(CONNECTION_STATUSES)
  status?: ConnectionStatus;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit?: number;

  @ApiPropertyOptional({
    description:
      'Only connections whose consent ends (consentExpiresAt) before this ISO 8601 time: those to ask to reconnect. A date alone ' +
      'is its midnight UTC; a time needs its offset (Z, +02:00).',
    example: '2027-03-02T09:00:00Z',
  })
  @IsOptional()
  @IsIsoTime()
  reconsentDueBefore?: string;

  @ApiPropertyOptional({ description: "The previous page's nextCursor, with the same status and reconsentDueBefore." })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  cursor?: string;
}
