import { InitialSchema1795746160671 } from './1795746160671-InitialSchema.js';
import { WebhookOutboxDeadLetter1795747200000 } from './1795747200000-WebhookOutboxDeadLetter.js';
import { AccessibleResourceChanges1795752000000 } from './1795752000000-AccessibleResourceChanges.js';
import { ConnectionLifecycle1795761000000 } from './1795761000000-ConnectionLifecycle.js';
import { AtlassianRateLimitPauses1795762000000 } from './1795762000000-AtlassianRateLimitPauses.js';
import { JiraWebhooks1795763000000 } from './1795763000000-JiraWebhooks.js';
import { JiraWebhookIdFirst1795764000000 } from './1795764000000-JiraWebhookIdFirst.js';
import { ConnectionChangeNotify1795765000000 } from './1795765000000-ConnectionChangeNotify.js';

/** Every migration, oldest first. A new migration is added here as well as in its own file. */
export const MIGRATIONS = [
  InitialSchema1795746160671,
  WebhookOutboxDeadLetter1795747200000,
  AccessibleResourceChanges1795752000000,
  ConnectionLifecycle1795761000000,
  AtlassianRateLimitPauses1795762000000,
  JiraWebhooks1795763000000,
  JiraWebhookIdFirst1795764000000,
  ConnectionChangeNotify1795765000000,
];
