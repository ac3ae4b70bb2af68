/** The breaker store suite against MemoryBreakerStore: one in-process store per case, on a manual clock. */
import { MemoryBreakerStore } from '../../src/resilience/breaker-store.ts';
import { breakerStoreConformance } from './breaker-store.ts';
import { manualClock } from './harness.ts';

breakerStoreConformance('memory', async () => {
  const clock = manualClock();
  // The instances of an in-process deployment are breakers sharing one store.
  const store = new MemoryBreakerStore(clock.now);
  return {
    open: async () => store,
    advance: clock.advance,
    shortTtlMs: 5_000,
    close: () => store.close(),
  };
});
