/**
 * A key created on another instance works here before that instance's
 * announcement arrives: `KeyStore.lookUpUnknown` finds it in the database by
 * its hash. Bounded: revoked, expired and unknown tokens stay refused, a
 * hash found absent is not looked up again, and a process looks up at most
 * `perSecond` unknown tokens a second.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeyStore } from '../../src/auth/key-store.ts';
import { UnknownTokenLookups } from '../../src/auth/unknown-token-lookups.ts';
import { migrate } from '../../src/store/migrations.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';

const MASTER = `sk-sy-master-${randomBytes(16).toString('hex')}`;
const randomToken = () => `sk-sy-${randomBytes(24).toString('base64url')}`;

describe('KeyStore.lookUpUnknown: two instances on one database', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-unknown-tokens-'));
  let database: Database;
  let origin: KeyStore;

  before(async () => {
    database = await openDatabase({ dataDir });
    await migrate(database);
    origin = new KeyStore(database, MASTER);
  });
  after(async () => {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Another instance: its cache loaded before the keys of a test were created. */
  async function otherInstance(perSecond = 100): Promise<KeyStore> {
    const store = new KeyStore(database, MASTER, { perSecond });
    await store.reload();
    return store;
  }

  it('finds a key created elsewhere, caches it, and then needs no lookup', async () => {
    const other = await otherInstance();
    const { secret, key } = await origin.create({ name: 'fresh', limits: { requests_per_minute: 5 } });
    assert.equal(other.authenticate(secret), null);
    const found = await other.lookUpUnknown(secret);
    assert.equal(found?.id, key.id);
    assert.deepEqual(found?.limits, { requests_per_minute: 5 });
    assert.equal(other.authenticate(secret)?.id, key.id);
    assert.equal(other.lookUpUnknown(secret), null, 'known now: nothing to look up');
  });

  it("loads the key's team when this instance has not heard of it", async () => {
    const other = await otherInstance();
    const team = await origin.createTeam({ name: 'late', tier: null, limits: null, budget: null });
    const { secret } = await origin.create({ name: 'member', teamId: team.id });
    assert.equal(other.team(team.id), undefined);
    assert.equal((await other.lookUpUnknown(secret))?.teamId, team.id);
    assert.equal(other.team(team.id)?.name, 'late');
  });

  it('refuses a revoked key, and remembers it: the next try is refused without a lookup', async () => {
    const other = await otherInstance();
    const { secret, key } = await origin.create({ name: 'doomed' });
    assert.equal(await origin.revoke(key.id), true);
    assert.equal(await other.lookUpUnknown(secret), null);
    assert.equal(other.lookUpUnknown(secret), null, 'remembered as absent: no promise, no query');
    assert.equal(other.authenticate(secret), null);
  });

  it('refuses an expired key and an unknown one', async () => {
    const other = await otherInstance();
    const { secret } = await origin.create({ name: 'old', expiresAt: Date.now() - 1_000 });
    assert.equal(await other.lookUpUnknown(secret), null);
    const unknown = randomToken();
    assert.equal(await other.lookUpUnknown(unknown), null);
    assert.equal(other.lookUpUnknown(unknown), null, 'remembered as absent');
  });

  it('never looks up what cannot be a virtual key: other shapes, the master key, internal credentials', async () => {
    const other = await otherInstance();
    for (const token of [
      'short',
      'sk-other-provider-key-0123456789',
      `sk-sy-${'x'.repeat(300)}`,
      'sk-sy-a b c d',
    ]) {
      assert.equal(other.lookUpUnknown(token), null, token.slice(0, 20));
    }
    assert.equal(other.lookUpUnknown(MASTER), null);
    assert.equal(other.lookUpUnknown(`${origin.internalCredential('key_x')}`), null);
  });

  it('looks up at most perSecond unknown tokens a second; the rest are refused at once', async () => {
    const other = await otherInstance(3);
    const lookups = Array.from({ length: 5 }, () => other.lookUpUnknown(randomToken()));
    assert.deepEqual(
      lookups.map((l) => l instanceof Promise),
      [true, true, true, false, false],
    );
    assert.deepEqual(await Promise.all(lookups), [null, null, null, null, null]);
  });
});

describe('UnknownTokenLookups', () => {
  it('a token bucket of perSecond, refilled continuously', () => {
    const lookups = new UnknownTokenLookups({ perSecond: 2 });
    const t0 = 1_000_000;
    assert.equal(lookups.admit('a', t0), true);
    assert.equal(lookups.admit('b', t0), true);
    assert.equal(lookups.admit('c', t0), false);
    assert.equal(lookups.admit('c', t0 + 499), false);
    assert.equal(lookups.admit('c', t0 + 500), true);
    assert.equal(lookups.admit('d', t0 + 10_000), true);
    assert.equal(lookups.admit('e', t0 + 10_000), true);
    assert.equal(lookups.admit('f', t0 + 10_000), false, 'an idle spell does not bank more than perSecond');
  });

  it('an absent hash is refused for rememberMs, then may be looked up again', () => {
    const lookups = new UnknownTokenLookups({ perSecond: 100, rememberMs: 1_000 });
    lookups.absent('gone', 5_000);
    assert.equal(lookups.admit('gone', 5_999), false);
    assert.equal(lookups.admit('gone', 6_000), true);
  });

  it('remembers at most rememberCount hashes, forgetting the oldest first', () => {
    const lookups = new UnknownTokenLookups({ perSecond: 100, rememberCount: 2 });
    lookups.absent('one', 0);
    lookups.absent('two', 0);
    lookups.absent('three', 0);
    assert.equal(lookups.admit('two', 1), false);
    assert.equal(lookups.admit('three', 1), false);
    assert.equal(lookups.admit('one', 1), true);
  });
});
