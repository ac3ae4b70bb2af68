/**
 * The dashboard in a real browser: playwright-core driving Debian's Chromium
 * (installed by the test setup when missing, as Redis and PostgreSQL are).
 * A wrong master key is refused; the right one signs in; the request-rate
 * number moves while a background loop sends traffic; a key is created
 * through the UI (its secret shown once, and it works), its tier changed,
 * then revoked through the UI (and the API refuses it); sign-out ends the
 * session. Screenshots go to test-artifacts/dashboard/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { ROOT, registerSecret, startTestGateway, type TestGateway, tempDir } from '../helpers/gateway.ts';
import { ensureChromium } from '../helpers/services.ts';

// The page's globals, as the functions passed to page.evaluate and
// waitForFunction see them in the browser (the project's types have no DOM).
declare const document: {
  cookie: string;
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(selector: string): { value: string } | null;
  querySelectorAll(selector: string): { length: number };
};
declare const localStorage: Record<string, string>;
declare const sessionStorage: Record<string, string>;

const SCREENSHOTS = join(ROOT, 'test-artifacts', 'dashboard');
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('dashboard in Chromium', () => {
  let gw: TestGateway;
  let browser: BrowserContext;
  let page: Page;
  let traffic: { stop(): Promise<number> } | undefined;

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const executablePath = await ensureChromium();
    gw = await startTestGateway({
      config: {
        providers: {
          mock: { type: 'mock', latency_ms: 20, stream_delay_ms: 5 },
          backup: { type: 'mock', latency_ms: 5 },
        },
        models: {
          'gpt-mock': { targets: [{ provider: 'mock', model: 'mock-1' }], cache: { enabled: true } },
          'claude-mock': { targets: [{ provider: 'backup', model: 'mock-2' }] },
        },
        pricing: { 'mock-1': { input: 2_000, output: 6_000 }, 'mock-2': { input: 1_000, output: 3_000 } },
      },
    });
    // A fresh profile each run; the user-data dir is what launchPersistentContext takes.
    browser = await chromium.launchPersistentContext(tempDir('switchyard-chromium-'), {
      executablePath,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1360, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  after(async () => {
    await traffic?.stop();
    await browser?.close();
    await gw?.close();
  });

  /** Sends requests (plain, streamed and repeated for cache hits) until stopped; resolves with how many. */
  function startTraffic(key: string): { stop(): Promise<number> } {
    const client = new OpenAI({ apiKey: key, baseURL: gw.baseUrl, maxRetries: 0 });
    let running = true;
    let sent = 0;
    const loop = (async () => {
      while (running) {
        const n = sent++;
        const model = n % 3 === 2 ? 'claude-mock' : 'gpt-mock';
        if (n % 4 === 1) {
          const stream = await client.chat.completions.create({
            model,
            stream: true,
            messages: [{ role: 'user', content: `stream ${n}` }],
          });
          for await (const _chunk of stream);
        } else {
          await client.chat.completions.create({
            model,
            max_tokens: 8,
            // Every other one repeats a prompt: the cache answers it.
            messages: [{ role: 'user', content: n % 2 === 0 ? 'the same question' : `question ${n}` }],
          });
        }
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return sent;
      },
    };
  }

  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });

  test('a wrong master key is refused on the sign-in page', async () => {
    await page.goto(`${gw.url}/dashboard`);
    await page.locator('#login-view').waitFor({ state: 'visible' });
    await page.fill('#master-key', 'sk-sy-master-this-is-not-it');
    await page.click('#login-submit');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.equal(await page.textContent('#login-error'), 'That is not the master key.');
    assert.equal(await page.isVisible('#overview-view'), false);
    await shot('01-login-refused.png');
  });

  test('signed in, the live numbers move while traffic runs', async () => {
    await page.fill('#master-key', gw.masterKey);
    await page.click('#login-submit');
    await page.locator('#overview-view').waitFor({ state: 'visible' });
    // The key never stays in the browser: not in storage, not readable as a cookie.
    const stored = await page.evaluate(
      () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie,
    );
    assert.ok(!stored.includes(gw.masterKey));
    assert.equal(await page.evaluate(() => document.cookie), '');

    await page.waitForFunction(() => document.getElementById('stat-rps')?.textContent === '0.0');
    traffic = startTraffic(gw.masterKey);
    // The rate climbs above zero, then its shown value changes again as traffic goes on.
    await page.waitForFunction(() => Number(document.getElementById('stat-rps')?.textContent) > 0);
    const first = await page.textContent('#stat-rps');
    await page.waitForFunction((shown) => document.getElementById('stat-rps')?.textContent !== shown, first);
    // Latency percentiles, TTFT (streams), cache hits and spend show numbers too.
    await page.waitForFunction(() => /ms|s/.test(document.getElementById('stat-latency')?.textContent ?? ''));
    await page.waitForFunction(() => /\d/.test(document.getElementById('stat-ttft')?.textContent ?? ''));
    await page.waitForFunction(() => /%/.test(document.getElementById('stat-cache')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelectorAll('#chart-rps path').length > 0);
    // Spend by model arrives with the slower poll; switch grouping to force a reload.
    await page.click('#spend-by button[data-by="model"]');
    await page.waitForFunction(() => document.querySelectorAll('#chart-spend rect').length > 0);
    assert.match((await page.textContent('#legend-spend')) ?? '', /gpt-mock/);
    assert.match((await page.textContent('#breakers')) ?? '', /mock\/mock-1/);
    await shot('02-overview-live.png');
    const sent = await traffic.stop();
    traffic = undefined;
    assert.ok(sent > 0);
  });

  test('a key is created (secret shown once), changed and revoked through the UI', async () => {
    await page.click('.tab[data-view="keys"]');
    await page.locator('#keys-view').waitFor({ state: 'visible' });
    await page.fill('#key-name', 'ui-created <b>key</b>');
    await page.selectOption('#key-tier', 'pro');
    await page.fill('#key-daily', '500');
    await page.click('#create-key');
    await page.locator('#new-key').waitFor({ state: 'visible' });
    const secret = (await page.textContent('#new-key-secret')) ?? '';
    registerSecret(secret);
    assert.match(secret, /^sk-sy-/);
    const client = new OpenAI({ apiKey: secret, baseURL: gw.baseUrl, maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model: 'gpt-mock',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(answer.object, 'chat.completion');

    const row = page.locator('#keys tr', { hasText: 'ui-created <b>key</b>' });
    await row.waitFor();
    // Rendered as text: the name's markup is not markup.
    assert.equal(await page.locator('#keys b').count(), 0);
    assert.equal(await row.locator('.edit-tier').inputValue(), 'pro');
    assert.equal(await row.locator('.edit-daily').inputValue(), '500');
    await shot('03-key-created.png');
    // The list never shows the secret: only the dismissed box held it.
    await page.click('#dismiss-secret');
    assert.ok(!((await page.textContent('body')) ?? '').includes(secret));

    const keyId = (await row.getAttribute('data-key-id'))!;
    await row.locator('.edit-tier').selectOption('enterprise');
    await row.locator('.edit-monthly').fill('4000');
    await row.locator('.save-key').click();
    await page.waitForFunction(
      (id) => document.querySelector(`tr[data-key-id="${id}"] .edit-monthly`)?.value === '4000',
      keyId,
    );
    const view = (await (
      await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${gw.masterKey}` } })
    ).json()) as { data: Array<{ id: string; tier: string; budget: unknown }> };
    const saved = view.data.find((k) => k.id === keyId)!;
    assert.equal(saved.tier, 'enterprise');
    assert.deepEqual(saved.budget, { daily_usd: 500, monthly_usd: 4000 });

    await page.check('#show-revoked');
    const revoke = page.locator(`tr[data-key-id="${keyId}"] .revoke-key`);
    await revoke.click();
    assert.equal(await revoke.textContent(), 'Confirm revoke');
    await revoke.click();
    await page.locator(`tr[data-key-id="${keyId}"] .key-status`, { hasText: 'revoked' }).waitFor();
    await shot('04-key-revoked.png');
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-mock', messages: [{ role: 'user', content: 'hi' }] }),
      (error: unknown) => error instanceof OpenAI.AuthenticationError,
    );
  });

  test('signing out ends the session', async () => {
    await page.click('#logout');
    await page.locator('#login-view').waitFor({ state: 'visible' });
    const status = await page.evaluate(async () => (await fetch('/dashboard/api/live')).status);
    assert.equal(status, 401);
    await page.reload();
    await page.locator('#login-view').waitFor({ state: 'visible' });
  });
});
