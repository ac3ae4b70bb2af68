/**
 * The webhook policy's decisions, without a network: what kind of address an
 * address is (IPv4, IPv6, IPv4 inside IPv6), which URLs are refused before any
 * lookup (odd numeric hosts judged by the address they reach), what an
 * allowlist lets through, and that every address a name resolves to is judged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { parseWebhookAllowlistEntry } from '../../src/config/webhook-allowlist.ts';
import {
  classifyAddress,
  operatorEndpointPolicy,
  WebhookPolicy,
  WebhookPolicyError,
} from '../../src/webhooks/webhook-url-policy.ts';

describe('classifyAddress', () => {
  const cases: Array<[string, string]> = [
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['100.128.0.1', 'public'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['::7f00:1', 'reserved'],
    // IPv4 inside IPv6: judged by the IPv4 address
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:0:0', 'unspecified'],
    ['::ffff:8.8.8.8', 'public'],
    ['0:0:0:0:0:ffff:c0a8:0101', 'private'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['2002:808:808::1', 'public'],
    // not addresses
    ['localhost', 'invalid'],
    ['2130706433', 'invalid'],
    ['', 'invalid'],
  ];
  for (const [address, kind] of cases) {
    test(`${address || '(empty)'} is ${kind}`, () => assert.equal(classifyAddress(address), kind));
  }
});

describe('checkUrl: before any lookup', () => {
  const policy = new WebhookPolicy();
  const refused = (url: string, pattern: RegExp) =>
    assert.throws(
      () => policy.checkUrl(url),
      (error: unknown) => {
        assert.ok(error instanceof WebhookPolicyError, String(error));
        assert.match(error.message, pattern);
        return true;
      },
    );

  test('public http and https URLs pass, parsed', () => {
    assert.equal(policy.checkUrl('https://hooks.example.com/a?b=1').host, 'hooks.example.com');
    assert.equal(policy.checkUrl('http://8.8.8.8:8080/x').port, '8080');
    assert.equal(policy.checkUrl(new URL('https://[2606:4700::1]/')).hostname, '[2606:4700::1]');
  });

  test('only http and https, no credentials, a bounded length', () => {
    for (const url of ['file:///etc/passwd', 'gopher://example.com/', 'ftp://example.com/', 'data:,x']) {
      refused(url, /must be http or https/);
    }
    refused('https://user:pass@example.com/', /credentials/);
    refused('https://token@example.com/', /credentials/);
    refused(`https://example.com/${'a'.repeat(2_100)}`, /longer than 2048/);
    refused('not a url', /not a valid webhook URL/);
    refused('http://exa mple.com/', /not a valid webhook URL/);
  });

  test('address hosts are judged by the address they reach, in every spelling', () => {
    const loopback = [
      'http://127.0.0.1/',
      'http://127.1/',
      'http://2130706433/',
      'http://0x7f000001/',
      'http://0x7f.1/',
      'http://017700000001/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:7f00:1]/',
      'http://[0:0:0:0:0:ffff:7f00:1]/',
    ];
    for (const url of loopback) refused(url, /refused by the webhook policy: .* is a loopback address/);
    refused('http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/);
    refused('http://10.0.0.1/', /10\.0\.0\.1 is a private address/);
    refused('http://0/', /0\.0\.0\.0 is an unspecified address/);
    refused('http://[::]/', /:: is an unspecified address/);
    refused('http://[fd00::1]:8080/', /fd00::1 is a private address/);
    refused('http://100.64.0.1/', /shared/);
    refused('http://255.255.255.255/', /broadcast/);
    refused('http://224.0.0.1/', /multicast/);
  });

  test('localhost names are loopback whatever DNS says', () => {
    refused('http://localhost:8080/', /localhost is a loopback name/);
    refused('http://LOCALHOST./', /loopback name/);
    refused('http://api.localhost/', /loopback name/);
  });

  test('parser confusion: the host is the one the URL parser (and undici) sees', () => {
    // The part after `#` is a fragment: the host is evil.example, which is not refused up front.
    assert.equal(policy.checkUrl('http://evil.example#@127.0.0.1/').hostname, 'evil.example');
    // A backslash is a slash in http URLs: the host is 127.0.0.1.
    refused('http://127.0.0.1\\@evil.example/', /loopback address/);
  });

  test('the message never quotes the path or query', () => {
    assert.throws(
      () => policy.checkUrl('http://127.0.0.1/hook?token=SECRET-TOKEN'),
      (error: Error) => !error.message.includes('SECRET') && !error.message.includes('/hook'),
    );
  });
});

describe('the allowlist', () => {
  test('entries: host names, *.domains, addresses, CIDR blocks', () => {
    assert.deepEqual(parseWebhookAllowlistEntry('Hooks.Internal.'), { kind: 'host', name: 'hooks.internal' });
    assert.deepEqual(parseWebhookAllowlistEntry('*.corp.example'), {
      kind: 'domain',
      suffix: '.corp.example',
    });
    assert.deepEqual(parseWebhookAllowlistEntry('10.0.0.0/8'), {
      kind: 'cidr',
      address: '10.0.0.0',
      prefix: 8,
      family: 'ipv4',
    });
    assert.deepEqual(parseWebhookAllowlistEntry('[fd00::]/8'), {
      kind: 'cidr',
      address: 'fd00::',
      prefix: 8,
      family: 'ipv6',
    });
    assert.deepEqual(parseWebhookAllowlistEntry('::1'), {
      kind: 'cidr',
      address: '::1',
      prefix: 128,
      family: 'ipv6',
    });
    // A numeric host reads as the address it is, as in URLs.
    assert.deepEqual(parseWebhookAllowlistEntry('2130706433'), {
      kind: 'cidr',
      address: '127.0.0.1',
      prefix: 32,
      family: 'ipv4',
    });
    for (const bad of ['', '10.0.0.0/33', '::/129', '10.0.0.0/x', 'a b', 'http://x/', 'x/8', '*.', '*']) {
      assert.equal(parseWebhookAllowlistEntry(bad), undefined, bad);
    }
  });

  test('the config schema refuses a bad entry and defaults to none', () => {
    const base = { providers: {}, models: {} };
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const ok = configSchema.parse({ ...base, webhooks: { secret } });
    assert.deepEqual(ok.webhooks?.allowlist, []);
    const listed = configSchema.parse({ ...base, webhooks: { secret, allowlist: ['10.0.0.0/8', '*.corp'] } });
    assert.deepEqual(listed.webhooks?.allowlist, ['10.0.0.0/8', '*.corp']);
    const bad = configSchema.safeParse({ ...base, webhooks: { secret, allowlist: ['10.0.0.0/40'] } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /CIDR block/);
  });

  test('a CIDR block allows the addresses in it, in any spelling, and no others', () => {
    const policy = new WebhookPolicy({ allowlist: ['127.0.0.0/8', '10.1.0.0/16', 'fd00::/8'] });
    assert.equal(policy.refusal('127.0.0.1'), undefined);
    assert.equal(policy.refusal('::ffff:7f00:1'), undefined);
    assert.equal(policy.refusal('10.1.2.3'), undefined);
    assert.match(policy.refusal('10.2.0.1') ?? '', /private/);
    assert.equal(policy.refusal('fd00::5'), undefined);
    assert.match(policy.refusal('fe80::1') ?? '', /link-local/);
    assert.match(policy.refusal('169.254.169.254') ?? '', /link-local/);
    assert.equal(policy.checkUrl('http://2130706433/').hostname, '127.0.0.1');
    assert.equal(policy.checkUrl('http://[::ffff:127.0.0.1]/').hostname, '[::ffff:7f00:1]');
  });

  test('a host entry allows whatever that name resolves to; *.domain the names under it', () => {
    const policy = new WebhookPolicy({ allowlist: ['hooks.internal', '*.corp.example', 'localhost'] });
    assert.equal(policy.refusal('10.0.0.1', 'hooks.internal'), undefined);
    assert.equal(policy.refusal('10.0.0.1', 'HOOKS.internal.'), undefined);
    assert.equal(policy.refusal('10.0.0.1', 'a.b.corp.example'), undefined);
    assert.match(
      policy.refusal('10.0.0.1', 'corp.example') ?? '',
      /corp\.example resolved to 10\.0\.0\.1, a private address/,
    );
    assert.match(policy.refusal('10.0.0.1', 'evilcorp.example') ?? '', /private/);
    assert.match(policy.refusal('10.0.0.1', 'hooks.internal.evil.example') ?? '', /private/);
    assert.equal(policy.checkUrl('http://localhost:1/').hostname, 'localhost');
  });

  test("an operator's endpoint policy trusts that URL's host, and only it", () => {
    const policy = operatorEndpointPolicy('http://127.0.0.1:9000/alerts');
    assert.equal(policy.refusal('127.0.0.1', '127.0.0.1'), undefined);
    assert.match(policy.refusal('127.0.0.2', '127.0.0.2') ?? '', /loopback/);
    const v6 = operatorEndpointPolicy('http://[::1]:9000/alerts', { allowlist: ['10.0.0.0/8'] });
    assert.equal(v6.refusal('::1'), undefined);
    assert.equal(v6.refusal('10.0.0.1'), undefined);
  });

  test('a policy built by hand with a bad entry throws', () => {
    assert.throws(() => new WebhookPolicy({ allowlist: ['10.0.0.0/99'] }), TypeError);
  });
});

describe('resolveAllowed: every address a name has is judged', () => {
  const resolver = (answers: Record<string, string[]>) => async (hostname: string) =>
    (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const);

  test('a public name passes with all its addresses', async () => {
    const policy = new WebhookPolicy({ resolve: resolver({ 'hooks.example': ['8.8.8.8', '2606:4700::1'] }) });
    assert.deepEqual(
      (await policy.resolveAllowed('hooks.example')).map((a) => a.address),
      ['8.8.8.8', '2606:4700::1'],
    );
  });

  test('one private address among public ones refuses the name', async () => {
    const policy = new WebhookPolicy({
      resolve: resolver({ 'mixed.example': ['8.8.8.8', '169.254.169.254'] }),
    });
    await assert.rejects(policy.resolveAllowed('mixed.example'), (error: Error) => {
      assert.ok(error instanceof WebhookPolicyError);
      assert.match(error.message, /mixed\.example resolved to 169\.254\.169\.254, a link-local address/);
      return true;
    });
  });

  test('no address: an ENOTFOUND error, not a refusal', async () => {
    const policy = new WebhookPolicy({ resolve: resolver({}) });
    await assert.rejects(policy.resolveAllowed('nowhere.example'), { code: 'ENOTFOUND' });
  });

  test('an address literal is judged without a lookup', async () => {
    const policy = new WebhookPolicy({
      resolve: async () => {
        throw new Error('no lookup expected');
      },
    });
    await assert.rejects(policy.resolveAllowed('[::1]'), WebhookPolicyError);
    assert.deepEqual(await policy.resolveAllowed('8.8.8.8'), [{ address: '8.8.8.8', family: 4 }]);
  });
});
