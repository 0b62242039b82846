/**
 * What the CLI prints, as a real process: it ends quietly when the reader of its output goes
 * away (`relay ... | head`), and it never prints a password embedded in a webhook URL.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, runCli } from './helpers/cli.js';

let dir: string;
let configFile: string;
const relay = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: dir });

beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(path.join(tmpdir(), 'relay-cli-output-'));
  configFile = path.join(dir, 'relay.yaml');
  writeFileSync(configFile, 'database: ./relay.db\nlog: { level: silent }\n');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI with its stdout on a pipe whose reading end is closed at once, as `| head` does once it has its lines. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--config', configFile, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe('a closed output pipe', () => {
  it('ends `relay domain add` quietly (no EPIPE stack trace), and the domain is still added', async () => {
    const result = await withClosedStdout(['domain', 'add', 'piped.test']);
    expect(result.stderr).toBe('');
    expect(result).toMatchObject({ code: 0, signal: null });
    const list = await relay('domain', 'list', '--json');
    expect(JSON.parse(list.stdout).map((d: { name: string }) => d.name)).toContain('piped.test');
  });

  it('ends a listing quietly too', async () => {
    const result = await withClosedStdout(['domain', 'list']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
  });

  it('through a shell pipeline into head', async () => {
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('sh', ['-c', `"${process.execPath}" "${BIN}" --config "${configFile}" domain add head.test | head -1`], {
        cwd: dir,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Added head\.test .*\n$/);
  });
});

describe('relay webhook', () => {
  it('masks a password (or a lone user name) embedded in a webhook URL in every listing', async () => {
    const added = await relay('webhook', 'add', 'https://hookuser:s3cret-pass@hooks.example.test/relay', '--json');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).not.toContain('s3cret-pass');
    expect(JSON.parse(added.stdout).url).toBe('https://hookuser:***@hooks.example.test/relay');
    await relay('webhook', 'add', 'https://tok-abcdef123456@hooks.example.test/other');
    await relay('webhook', 'add', 'https://plain.example.test/hook');

    const table = await relay('webhook', 'list');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain('https://hookuser:***@hooks.example.test/relay');
    expect(table.stdout).toContain('https://***@hooks.example.test/other');
    expect(table.stdout).toContain('https://plain.example.test/hook');
    const json = await relay('webhook', 'list', '--json');
    for (const output of [table.stdout, json.stdout]) {
      expect(output).not.toContain('s3cret-pass');
      expect(output).not.toContain('tok-abcdef123456');
    }
    expect(JSON.parse(json.stdout).map((w: { url: string }) => w.url)).toEqual([
      'https://hookuser:***@hooks.example.test/relay',
      'https://***@hooks.example.test/other',
      'https://plain.example.test/hook',
    ]);
  });

  it('masks it in the error of `relay webhook test`', async () => {
    const list = JSON.parse((await relay('webhook', 'list', '--json')).stdout) as { id: number }[];
    // Nothing listens on port 9 of loopback: the POST fails at once.
    const added = await relay('webhook', 'add', 'http://user:t0p-secret@127.0.0.1:9/hook', '--json');
    const id = JSON.parse(added.stdout).id as number;
    expect(list.some((w) => w.id === id)).toBe(false);
    const result = await relay('webhook', 'test', String(id));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('http://user:***@127.0.0.1:9/hook');
    expect(result.stderr).not.toContain('t0p-secret');
  });
});
