import { AccessibleResourceChangeEntity } from '../connections/accessible-resource-change.entity.js';
import { AccessibleResourceEntity } from '../connections/accessible-resource.entity.js';
import { ConnectionEntity } from '../connections/connection.entity.js';
import {
  JiraWebhookDeliveryEntity,
  JiraWebhookRegistrationEntity,
  JiraWebhookSubscriptionsEntity,
} from '../jira-webhooks/jira-webhook.entities.js';
import { ConnectTicketEntity } from '../oauth/connect-ticket.entity.js';
import { OAuthStateEntity } from '../oauth/oauth-state.entity.js';
import { RateLimitPauseEntity } from '../rate-limits/rate-limit-pause.entity.js';
import { WebhookEventEntity } from '../webhooks/webhook-event.entity.js';

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
