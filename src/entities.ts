import { AccessibleResourceChangeEntity } from './connection-store/accessible-resource-change.entity.js';
import { AccessibleResourceEntity } from './connection-store/accessible-resource.entity.js';
import { ConnectionEntity } from './connection-store/connection.entity.js';
import {
  JiraWebhookDeliveryEntity,
  JiraWebhookRegistrationEntity,
  JiraWebhookSubscriptionsEntity,
} from './jira-webhooks/jira-webhook.entities.js';
import { ConnectTicketEntity } from './oauth/connect-ticket.entity.js';
import { OAuthStateEntity } from './oauth/oauth-state.entity.js';
import { RateLimitPauseEntity } from './rate-limits/rate-limit-pause.entity.js';
import { WebhookEventEntity } from './webhooks/webhook-event.entity.js';

/**
 * The service's tables as TypeORM entities: what `npm run migration:generate` compares the migrations with, and what
 * the migrations test holds them to. The service itself needs none of them at run time (every statement is a
 * repository's own SQL), so the database definition in database/ names no domain folder.
 */
export const ENTITIES = [
  ConnectionEntity,
  AccessibleResourceEntity,
  AccessibleResourceChangeEntity,
  ConnectTicketEntity,
  OAuthStateEntity,
  WebhookEventEntity,
  RateLimitPauseEntity,
  JiraWebhookSubscriptionsEntity,
  JiraWebhookRegistrationEntity,
  JiraWebhookDeliveryEntity,
];
