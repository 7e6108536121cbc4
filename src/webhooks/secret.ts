import type { Logger } from '../logger.ts';
import type { TaskStore } from '../store/taskStore.ts';
import { generateWebhookSecret, parseWebhookSecret } from './signature.ts';

const SETTING = 'webhook_secret';

/**
 * The signing key: WEBHOOK_SECRET when set; otherwise one generated once and kept in the store, so
 * receivers keep verifying across restarts (and every instance on a shared store signs alike).
 */
export async function loadWebhookKey(configured: string | null, store: TaskStore, log: Logger): Promise<Buffer> {
  if (configured !== null) return parseWebhookSecret(configured);
  const existing = await store.getSetting(SETTING);
  if (existing !== null) return parseWebhookSecret(existing);
  const stored = await store.initSetting(SETTING, generateWebhookSecret());
  log.warn(
    { event: 'webhook:secret-generated', webhookSecret: stored },
    'generated a webhook signing secret and stored it; give it to your webhook receivers, or set WEBHOOK_SECRET to choose your own',
  );
  return parseWebhookSecret(stored);
}
