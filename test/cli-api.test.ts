/**
 * The operator's side of the HTTP API, with the compiled CLI: `credential add --api-key` prints
 * a key once (only its hash is stored) and `template add` stores versioned templates; an app
 * then sends with that key and template against a running relay.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli } from './helpers/cli.js';
import { apiClient } from './helpers/http.js';
import { addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

let relay: TestRelay;
const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });

beforeAll(async () => {
  assertBuilt();
  relay = await startTestRelay();
  await addSenderDomain(relay.storage, 'acme.test');
});

afterAll(() => relay?.stop());

describe('relay credential add --api-key and relay template add', { timeout: 30_000 }, () => {
  it('issues API keys once, and sends with a template added from files', async () => {
    const created = await cli('credential', 'add', 'shop', '--domain', 'acme.test', '--api-key');
    expect(created.code, created.stderr).toBe(0);
    const key = /API key:\s+(rk_\S+)/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    expect(created.stdout).toMatch(/will not be shown again/);

    const another = await cli('credential', 'add', 'shop', '--api-key', '--json');
    expect(another.code, another.stderr).toBe(0);
    const secondKey = (JSON.parse(another.stdout) as { api_key: string }).api_key;
    expect(secondKey).not.toBe(key);
    expect((await cli('credential', 'add', 'shop', '--domain', 'acme.test')).stderr).toMatch(/already exists.*--api-key/);
    expect((await cli('credential', 'add', 'nodomain')).stderr).toMatch(/--domain/);

    writeFileSync(path.join(relay.dir, 'welcome.txt'), 'Hi {{name}}, welcome.');
    writeFileSync(path.join(relay.dir, 'welcome.html'), '<p>Hi {{name}}</p>');
    const added = await cli(
      'template',
      'add',
      'welcome',
      '--subject',
      'Welcome {{name}}',
      '--text-file',
      'welcome.txt',
      '--html-file',
      'welcome.html',
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/version 1/);
    expect((await cli('template', 'add', 'welcome', '--subject', 'Welcome again {{name}}', '--text-file', 'welcome.txt')).stdout).toMatch(
      /version 2/,
    );
    const listed = JSON.parse((await cli('template', 'list', '--json')).stdout) as { name: string; version: number; parts: string[] }[];
    expect(listed).toEqual([expect.objectContaining({ name: 'welcome', version: 2, parts: ['text'] })]);
    expect((await cli('template', 'add', 'bad', '--subject', '{{#open}}', '--text-file', 'welcome.txt')).stderr).toMatch(
      /not a valid template/,
    );

    for (const apiKey of [key!, secondKey]) {
      const res = await apiClient(relay.ports.http!, apiKey)('POST', '/v1/messages', {
        from: 'shop@acme.test',
        to: 'ann@example.test',
        template: { name: 'welcome', version: 1, variables: { name: 'Ann' } },
      });
      expect(res.status).toBe(202);
    }
    expect(await relay.storage.queue.pending()).toHaveLength(2);

    expect((await cli('credential', 'revoke', 'shop')).code).toBe(0);
    const revoked = await apiClient(relay.ports.http!, key)('POST', '/v1/messages', {
      from: 'shop@acme.test',
      to: 'a@example.test',
      subject: 's',
      text: 't',
    });
    expect(revoked.status).toBe(401);
  });
});
