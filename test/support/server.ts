import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/logger.ts';

export interface TestServer {
  app: App;
  /** http://127.0.0.1:<port>/graphql */
  url: string;
  origin: string;
  dataDir: string;
  /** The parsed GraphQL response (`data`, `errors`): loosely typed, tests assert its shape. */
  gql(query: string, variables?: Record<string, unknown>): Promise<any>;
  stop(): Promise<void>;
}

/**
 * The real server on an ephemeral loopback port. `dataDir` restarts on an existing database (the
 * caller then owns the directory); otherwise a fresh one is made and removed on stop.
 */
export async function startTestServer(overrides: Partial<Config> = {}, options: { log?: Logger; dataDir?: string } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'longhaul-test-'));
  const config: Config = {
    ...loadConfig({}),
    port: 0,
    host: '127.0.0.1',
    databaseUrl: `sqlite:${join(dataDir, 'longhaul.db')}`,
    workerConcurrency: 2,
    inferenceThreads: 2,
    checkpointIntervalMs: 50,
    pollIntervalMs: 500,
    shutdownGraceSeconds: 5,
    ...overrides,
  };
  const app = buildApp(config, { log: options.log ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
  const { url } = await app.start();
  const origin = new URL(url).origin;
  return {
    app,
    url,
    origin,
    dataDir,
    gql: (query, variables) => graphqlRequest(url, query, variables),
    async stop() {
      await app.stop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function graphqlRequest(url: string, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as any;
}
