import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { generateWebhookSecret } from '../../src/webhooks/signature.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startWebhookReceiver } from '../support/webhookReceiver.ts';
import { CANCEL, items, SUBMIT, WATCH } from '../support/fixtures.ts';

const secret = generateWebhookSecret();
// Loopback is where the test receivers live; only named hosts are exempt from the address block.
const webhookConfig: Partial<Config> = {
  webhookSecret: secret,
  webhookAllowedHosts: ['127.0.0.1'],
  webhookRetryBaseMs: 50,
  webhookRetryMaxMs: 200,
  webhookMaxAttempts: 3,
};
const DELIVERIES = `query ($id: ID!) { task(id: $id) { status webhookDeliveries { attempt at responseStatus error delivered } } }`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...webhookConfig, workerConcurrency: 1 });
});
afterAll(async () => {
  await server?.stop();
});

async function submit(s: TestServer, input: Record<string, unknown>) {
  const { data, errors } = await s.gql(SUBMIT, { input });
  expect(errors).toBeUndefined();
  return data.submitBulkInference as { id: string };
}
const untilTerminal = (s: TestServer, id: string) => collect(webSocketTransport.subscribe(s.url, WATCH, { id }));

describe('webhook delivery', () => {
  it('retries a failing receiver and delivers the same signed message, visible in webhookDeliveries', async () => {
    const receiver = await startWebhookReceiver([{ status: 503 }, { status: 200 }]);
    try {
      const task = await submit(server, { items: items(3), webhookUrl: receiver.url });
      await untilTerminal(server, task.id);
      await receiver.waitFor(2);

      const [first, second] = receiver.received;
      expect(first!.headers['webhook-id']).toMatch(/^msg_/);
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
      expect(first!.body).toBe(second!.body);
      for (const request of receiver.received) {
        // A third-party verifier: signature, timestamp tolerance and the id all check out.
        const payload = new Webhook(secret).verify(request.body, request.headers as Record<string, string>) as any;
        expect(payload).toMatchObject({ type: 'task.succeeded', data: { id: task.id, status: 'SUCCEEDED', itemsSucceeded: 3, suggestedNextPollTime: null } });
        expect(payload.data._links.self).toBe(`/v1/inference/jobs/${task.id}`);
        expect(Date.parse(payload.timestamp)).toBeGreaterThan(0);
      }
      expect(first!.headers['content-type']).toBe('application/json');

      await expect
        .poll(async () => (await server.gql(DELIVERIES, { id: task.id })).data.task.webhookDeliveries.length, { timeout: 5_000 })
        .toBe(2);
      const deliveries = (await server.gql(DELIVERIES, { id: task.id })).data.task.webhookDeliveries;
      expect(deliveries).toMatchObject([
        { attempt: 1, responseStatus: 503, error: 'HTTP 503', delivered: false },
        { attempt: 2, responseStatus: 200, error: null, delivered: true },
      ]);
      expect(Date.parse(deliveries[1].at)).toBeGreaterThanOrEqual(Date.parse(deliveries[0].at) + 25);
    } finally {
      await receiver.close();
    }
  });

  it('announces a cancellation as task.cancelled', async () => {
    const receiver = await startWebhookReceiver([{ status: 204 }]);
    try {
      const task = await submit(server, { items: items(50_000), webhookUrl: receiver.url });
      await server.gql(CANCEL, { id: task.id });
      await receiver.waitFor(1);
      const payload = new Webhook(secret).verify(receiver.received[0]!.body, receiver.received[0]!.headers as Record<string, string>) as any;
      expect(payload).toMatchObject({ type: 'task.cancelled', data: { id: task.id, status: 'CANCELLED', error: { code: 'CANCELLED' } } });
    } finally {
      await receiver.close();
    }
  });

  it('stops at 410 Gone and gives up after the last attempt', async () => {
    const gone = await startWebhookReceiver([{ status: 410 }]);
    const broken = await startWebhookReceiver([{ status: 500 }]);
    try {
      const toGone = await submit(server, { items: items(1), webhookUrl: gone.url });
      const toBroken = await submit(server, { items: items(1), webhookUrl: broken.url });
      await broken.waitFor(3);
      await gone.waitFor(1);
      // The last attempts are recorded just after they are answered.
      await expect.poll(async () => (await server.gql(DELIVERIES, { id: toBroken.id })).data.task.webhookDeliveries.length, { timeout: 5_000 }).toBe(3);
      const brokenDeliveries = (await server.gql(DELIVERIES, { id: toBroken.id })).data.task.webhookDeliveries;
      expect(brokenDeliveries.map((d: any) => d.responseStatus)).toEqual([500, 500, 500]);
      const goneDeliveries = (await server.gql(DELIVERIES, { id: toGone.id })).data.task.webhookDeliveries;
      expect(goneDeliveries).toMatchObject([{ attempt: 1, responseStatus: 410, delivered: false }]);
      // Nothing more arrives: a fresh message to another receiver goes through while these stay silent.
      const control = await startWebhookReceiver([{ status: 200 }]);
      await submit(server, { items: items(1), webhookUrl: control.url });
      await control.waitFor(1);
      await control.close();
      expect(gone.received).toHaveLength(1);
      expect(broken.received).toHaveLength(3);
    } finally {
      await gone.close();
      await broken.close();
    }
  });
});

describe('a delivery survives a restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'longhaul-webhook-restart-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('is retried by the next process, with the same message id', async () => {
    // The receiver asks for a retry in a second, and the server stops before it comes.
    const receiver = await startWebhookReceiver([{ status: 503, headers: { 'retry-after': '1' } }, { status: 200 }]);
    try {
      const before = await startTestServer({ ...webhookConfig, workerConcurrency: 0 }, { dataDir });
      const task = await submit(before, { items: items(1), webhookUrl: receiver.url });
      await before.gql(CANCEL, { id: task.id });
      await receiver.waitFor(1);
      await before.stop();

      const after = await startTestServer({ ...webhookConfig, workerConcurrency: 0 }, { dataDir });
      try {
        await receiver.waitFor(2);
        expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
        new Webhook(secret).verify(receiver.received[1]!.body, receiver.received[1]!.headers as Record<string, string>);
        await expect.poll(async () => (await after.gql(DELIVERIES, { id: task.id })).data.task.webhookDeliveries.length, { timeout: 5_000 }).toBe(2);
      } finally {
        await after.stop();
      }
    } finally {
      await receiver.close();
    }
  });

  it('is checked again at delivery time: a host no longer allowed is refused', async () => {
    const receiver = await startWebhookReceiver([{ status: 503, headers: { 'retry-after': '1' } }]);
    const restrictDir = mkdtempSync(join(tmpdir(), 'longhaul-webhook-policy-'));
    try {
      const before = await startTestServer({ ...webhookConfig, workerConcurrency: 0 }, { dataDir: restrictDir });
      const task = await submit(before, { items: items(1), webhookUrl: receiver.url });
      await before.gql(CANCEL, { id: task.id });
      await receiver.waitFor(1);
      await before.stop();

      const after = await startTestServer({ ...webhookConfig, webhookAllowedHosts: [], workerConcurrency: 0 }, { dataDir: restrictDir });
      try {
        await expect.poll(async () => (await after.gql(DELIVERIES, { id: task.id })).data.task.webhookDeliveries.length, { timeout: 5_000 }).toBe(2);
        const [, refused] = (await after.gql(DELIVERIES, { id: task.id })).data.task.webhookDeliveries;
        expect(refused).toMatchObject({ attempt: 2, responseStatus: null, delivered: false, error: expect.stringMatching(/refused: .*loopback/) });
        expect(receiver.received).toHaveLength(1);
      } finally {
        await after.stop();
      }
    } finally {
      await receiver.close();
      rmSync(restrictDir, { recursive: true, force: true });
    }
  });
});

describe('webhook URLs are checked at submit (SSRF)', () => {
  it.each([
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['http://[fe80::1]/hook', /link-local/],
    ['http://[::ffff:127.0.0.1]/hook', /loopback/],
    ['http://10.0.0.1/hook', /private/],
    ['http://224.0.0.1/hook', /multicast/],
    ['http://0.0.0.0/hook', /unspecified/],
    ['http://localhost/hook', /loopback/],
    ['http://user:secret@127.0.0.1/hook', /credentials/],
    ['file:///etc/passwd', /http\(s\)/],
  ])('refuses %s with BAD_USER_INPUT and stores nothing', async (webhookUrl, message) => {
    const count = async () => (await server.gql(`{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges.length;
    const before = await count();
    const { data, errors } = await server.gql(SUBMIT, { input: { items: items(1), webhookUrl } });
    expect(data).toBeNull();
    expect(errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(errors[0].message).toMatch(message);
    expect(await count()).toBe(before);
  });
});

describe('without WEBHOOK_SECRET', () => {
  it('generates a secret once, logs it once, and signs with it across restarts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'longhaul-webhook-secret-'));
    const { lines: logged, log } = captureLogs('info');
    const receiver = await startWebhookReceiver([{ status: 200 }]);
    try {
      const config = { ...webhookConfig, webhookSecret: null, workerConcurrency: 0 };
      await (await startTestServer(config, { dataDir, log })).stop();
      const generated = logged.filter((line) => line.event === 'webhook:secret-generated');
      expect(generated).toHaveLength(1);
      const stored = generated[0]!.webhookSecret as string;
      expect(stored).toMatch(/^whsec_/);

      const again = await startTestServer(config, { dataDir, log });
      try {
        expect(logged.filter((line) => line.event === 'webhook:secret-generated')).toHaveLength(1);
        const task = await submit(again, { items: items(1), webhookUrl: receiver.url });
        await again.gql(CANCEL, { id: task.id });
        await receiver.waitFor(1);
        new Webhook(stored).verify(receiver.received[0]!.body, receiver.received[0]!.headers as Record<string, string>);
      } finally {
        await again.stop();
      }
    } finally {
      await receiver.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
