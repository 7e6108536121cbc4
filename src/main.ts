import { buildApp, type App } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger, type Logger } from './logger.ts';

let app: App;
let log: Logger;
try {
  const config = loadConfig();
  log = createLogger(config.logLevel);
  app = buildApp(config, { log });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`Longhaul cannot start: ${error.message}`);
  process.exit(1);
}

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'shutdown', signal }, 'shutting down gracefully');
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

try {
  await app.start();
} catch (err) {
  log.fatal({ err }, 'Longhaul failed to start');
  process.exit(1);
}
