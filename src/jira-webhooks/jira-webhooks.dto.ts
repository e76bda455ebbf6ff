import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsOptional, IsString, Matches, MaxLength, MinLength, ValidateNested } from 'class-validator';
import type { RegistrationStatus } from './jira-webhook.entities.js';

/** What Jira's webhook event names look like (`jira:issue_updated`, `comment_created`); Jira itself has the final word. */
const EVENT_PATTERN = /^[A-Za-z0-9_:.-]{1,100}$/;
const CLOUD_ID_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

export class JiraWebhookSubscriptionDto {
  @ApiProperty({ description: "Jira's webhook events, e.g. jira:issue_updated, comment_created.", example: ['jira:issue_updated'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(EVENT_PATTERN, { each: true })
  events: string[];

  @ApiProperty({
    description:
      "A JQL filter in Jira's webhook subset: issueKey, project, issuetype, status, assignee, reporter, issue.property, cf[id] with =, !=, IN, NOT IN.",
    example: 'project = ABC',
  })
  @IsString()
  @MinLength(1)
  @MaxLength(2000)
  jqlFilter: string;

  @ApiPropertyOptional({ description: 'Field ids: jira:issue_updated is sent only when one of these changed.', example: ['summary'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @MaxLength(255, { each: true })
  fieldIdsFilter?: string[];
}

export class PutJiraWebhooksDto {
  @ApiProperty({ type: [JiraWebhookSubscriptionDto], description: 'Every subscription wanted; an empty list removes them all.' })
  @IsArray()
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => JiraWebhookSubscriptionDto)
  webhooks: JiraWebhookSubscriptionDto[];

  @ApiPropertyOptional({
    description: 'The sites to register on; every site of the user when absent.',
    example: ['1324a887-45db-1bf4-1e99-ef0ff456d421'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @Matches(CLOUD_ID_PATTERN, { each: true })
  cloudIds?: string[];
}

export class JiraWebhookDto {
  @ApiProperty({ description: 'The site.' })
  cloudId: string;

  @ApiProperty({ type: 'integer', nullable: true, description: "Jira's id for the registration; null while registering it fails." })
  jiraWebhookId: number | null;

  @ApiProperty({ type: [String] })
  events: string[];

  @ApiProperty()
  jqlFilter: string;

  @ApiProperty({
    enum: ['active', 'failing', 'paused', 'removed'],
    description: 'active; failing (transient errors, retried); paused (the connection needs consent again; registered again after it).',
  })
  status: RegistrationStatus;

  @ApiProperty({
    nullable: true,
    format: 'date-time',
    description: 'The expirationDate Jira reported; the service extends it before it comes.',
  })
  expiresAt: string | null;

  @ApiProperty({ nullable: true, format: 'date-time' })
  lastDeliveryAt: string | null;

  @ApiProperty({ nullable: true, description: 'Why the last attempt at Jira failed.' })
  lastError: string | null;
}

export class JiraWebhooksDto {
  @ApiProperty()
  userId: string;

  @ApiProperty({ type: [JiraWebhookDto] })
  webhooks: JiraWebhookDto[];
}
