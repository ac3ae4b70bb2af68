/**
 * Read replicas with a real PostgreSQL streaming replica (pg_basebackup over
 * loopback, hot standby): admin and usage reads are served by the replica
 * (seen in the replica's own pg_stat_activity), writes go to the primary,
 * and with the replica stopped the same reads fall back to the primary
 * without an error.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { eventually } from '../conformance/harness.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type PostgresService, startPostgres, startPostgresReplica } from '../helpers/services.ts';

async function query<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('a gateway with a streaming read replica', () => {
  let primary: PostgresService;
  let replica: PostgresService;
  let gw: TestGateway;
  let key = '';

  before(async () => {
    primary = await startPostgres();
    replica = await startPostgresReplica(primary.url);
    gw = await startTestGateway({
      databaseUrl: primary.url,
      // Health checks ping the replica once at start, then not again during the test.
      config: { storage: { replica_urls: [replica.url] }, health: { interval_ms: 3_600_000 } },
    });
    const created = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'replicated' }),
    });
    key = ((await created.json()) as { key: string }).key;
  });
  after(async () => {
    await gw.close();
    await replica.stop();
    await primary.stop();
  });

  /**
   * What the gateway's connections to the replica last ran (pg_stat_activity
   * keeps an idle backend's last query), leaving out the health checker's
   * background `select 1` (it pings every replica; /health/deep reports them).
   */
  const replicaQueries = async () =>
    (
      await query<{ query: string }>(
        replica.url,
        "select query from pg_stat_activity where application_name = 'switchyard' and backend_type = 'client backend'",
      )
    )
      .map((row) => row.query)
      .filter((q) => q.trim().toLowerCase() !== 'select 1');

  test('usage and key listings are read on the replica; the rows were written on the primary', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'ping' }] }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    await gw.gateway.context.ledger.flush();
    const [standby] = await query<{ in_recovery: boolean }>(
      replica.url,
      'select pg_is_in_recovery() as in_recovery',
    );
    assert.equal(standby?.in_recovery, true, 'the replica is a hot standby');
    assert.equal(
      (await query(primary.url, 'select 1 from usage_ledger')).length,
      3,
      'written on the primary',
    );
    await eventually(
      'the rows replicated',
      // The replica may not have replayed the table's creation yet: that is "not yet", not a failure.
      async () => (await query(replica.url, 'select 1 from usage_ledger').catch(() => [])).length === 3,
      { timeoutMs: 10_000 },
    );
    assert.deepEqual(await replicaQueries(), [], 'nothing read on the replica yet');

    const usage = await fetch(`${gw.url}/admin/usage?group_by=model`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(usage.status, 200);
    assert.equal(((await usage.json()) as { data: Array<{ attempts: number }> }).data[0]?.attempts, 3);
    assert.ok(
      (await replicaQueries()).some((q) => q.includes('usage_ledger')),
      'the usage report ran on the replica',
    );

    const keys = await fetch(`${gw.url}/admin/keys`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    assert.equal(((await keys.json()) as { data: unknown[] }).data.length, 1);
    assert.ok(
      (await replicaQueries()).some((q) => q.includes('virtual_keys')),
      'the key listing ran on the replica',
    );
  });

  test('with the replica stopped, the same reads are answered by the primary, no error', async () => {
    await replica.halt();
    for (let i = 0; i < 2; i++) {
      const usage = await fetch(`${gw.url}/admin/usage?group_by=model`, {
        headers: { authorization: `Bearer ${gw.masterKey}` },
      });
      assert.equal(usage.status, 200);
      assert.equal(((await usage.json()) as { data: Array<{ attempts: number }> }).data[0]?.attempts, 3);
    }
    assert.match(readFileSync(gw.logFile, 'utf8'), /read replica unreachable/);
  });
});
