/** The rate-limit store suite against MemoryRateLimitStore: one store per case, on a manual clock. */
import { MemoryRateLimitStore } from '../../src/limits/memory-rate-limit-store.ts';
import { manualClock } from './harness.ts';
import { rateLimitStoreConformance } from './rate-limit-store.ts';

rateLimitStoreConformance('memory', async () => {
  const clock = manualClock();
  // The instances of an in-process deployment share one store.
  const store = new MemoryRateLimitStore(clock.now);
  return { open: async () => store, advance: clock.advance, shortWindowMs: 60_000, close: async () => {} };
});
