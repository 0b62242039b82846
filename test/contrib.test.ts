/**
 * contrib/relay.service, the systemd unit: checked by `systemd-analyze verify` where that
 * command exists, and read for what the README promises of it (its own user, the bind
 * capability, restart on failure, a SIGTERM drain that fits in TimeoutStopSec).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';

const UNIT = path.join(ROOT, 'contrib/relay.service');
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!]);
  }
  return found;
}

describe('contrib/relay.service', () => {
  it('runs relay serve directly as its own user, with the bind capability, restarting on failure and draining on SIGTERM', () => {
    const unit = directives(readFileSync(UNIT, 'utf8'));
    expect(unit.get('User')?.[0]).toMatch(/^[a-z][a-z0-9_-]*$/);
    expect(unit.get('User')?.[0]).not.toBe('root');
    expect(unit.get('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(unit.get('Restart')).toEqual(['on-failure']);
    expect(unit.get('KillSignal')).toEqual(['SIGTERM']);
    // No npm or shell in between, so the signal reaches the relay itself.
    expect(unit.get('ExecStart')?.[0]).toMatch(/^\/\S*node \S*bin\/relay\.js .*serve$/);
    // Sessions get up to 30 s and deliveries up to 30 s more (README, "SIGTERM").
    const stop = /^(\d+)s?$/.exec(unit.get('TimeoutStopSec')?.[0] ?? '');
    expect(Number(stop?.[1])).toBeGreaterThanOrEqual(60);
  });

  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify', () => {
    const result = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(result.stderr.split('\n').filter((line) => line.includes('relay.service'))).toEqual([]);
    expect(result.status, result.stderr).toBe(0);
  });
});
