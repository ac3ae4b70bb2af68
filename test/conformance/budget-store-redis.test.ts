/**
 * The budget store suite against RedisBudgetStore on a real Redis: each store
 * its own connection, each case its own key prefix (./redis-stores.ts).
 */
import { RedisBudgetStore } from '../../src/limits/redis-budget-store.ts';
import { budgetStoreConformance } from './budget-store.ts';
import { redisStores } from './redis-stores.ts';

budgetStoreConformance('redis', async () => redisStores((redis, keys) => new RedisBudgetStore(redis, keys)));
