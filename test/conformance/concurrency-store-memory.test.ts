/** The concurrency store suite against MemoryConcurrencyStore, shared by the "instances" of one process. */
import { MemoryConcurrencyStore } from '../../src/limits/concurrency-store.ts';
import { concurrencyStoreConformance } from './concurrency-store.ts';

concurrencyStoreConformance('memory', async () => {
  const store = new MemoryConcurrencyStore();
  return { open: async () => store, close: async () => {} };
});
