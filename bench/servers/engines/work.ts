import { loadModels } from '../../../src/inference/models.ts';
import type { ItemOutcome } from '../../../src/domain/results.ts';

/**
 * The job every engine runs: Longhaul's SENTIMENT model over one short text (tens of microseconds).
 * Longhaul runs it on its inference threads; the peers run it where their jobs normally run, in
 * their worker's process.
 */
export function loadWork(): (text: string) => ItemOutcome {
  const models = loadModels({ maxTokens: 2_048 });
  return (text) => models.run('SENTIMENT', text);
}
