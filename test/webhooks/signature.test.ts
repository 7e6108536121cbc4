import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, parseWebhookSecret, signWebhook } from '../../src/webhooks/signature.ts';

describe('webhook signatures', () => {
  it('verify with the standardwebhooks library', () => {
    const secret = generateWebhookSecret();
    const body = JSON.stringify({ type: 'task.succeeded', data: { id: 'task_x' } });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(timestamp), 'webhook-signature': signWebhook(parseWebhookSecret(secret), 'msg_1', timestamp, body) };
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace('task_x', 'task_y'), headers)).toThrow();
    expect(() => new Webhook(generateWebhookSecret()).verify(body, headers)).toThrow();
  });

  it('refuses malformed secrets', () => {
    expect(() => parseWebhookSecret('secret')).toThrow(/whsec_/);
    expect(() => parseWebhookSecret('whsec_c2hvcnQ=')).toThrow(/at least 16 bytes/);
    expect(() => parseWebhookSecret('whsec_not base64!')).toThrow();
  });
});
