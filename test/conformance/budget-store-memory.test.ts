/** The budget store suite against MemoryBudgetStore, shared by the "instances" of one process. */
import { MemoryBudgetStore } from '../../src/limits/budget-store.ts';
import { budgetStoreConformance } from './budget-store.ts';

budgetStoreConformance('memory', async () => {
  // Before the windows' end, so none has lapsed.
  const store = new MemoryBudgetStore(() => Date.UTC(2026, 11, 1, 12));
  return { open: async () => store, close: async () => {} };
});
