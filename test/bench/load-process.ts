/**
 * The load generator in a child process of its own, so its CPU time is its own (the bench
 * process also runs the sink and the DNS server) and it competes with the relay for the cores
 * the way a separate client machine's process would not, but visibly: each run reports it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Engine, LoadResult, Target } from './load.js';

export type LoadSpec =
  | {
      kind: 'pooled';
      engine: Engine;
      target: Target | Target[];
      size: number;
      connections: number;
      messages: number;
      durationMs: number;
      ratePerSecond?: number;
    }
  | {
      kind: 'per-message';
      engine: Engine;
      target: Target;
      size: number;
      concurrency: number;
      messages: number;
      durationMs: number;
      resumeTls?: boolean;
    };

const CHILD = fileURLToPath(new URL('./load-child.ts', import.meta.url));

/** Runs one load in a fresh child process; resolves with its figures and its CPU time. */
export function runLoad(spec: LoadSpec): Promise<LoadResult & { cpuMs: number }> {
  return new Promise((resolve, reject) => {
    // The child inherits the tsx loader through process.execArgv; 'advanced' carries Infinity and Buffers.
    const child = fork(CHILD, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: (LoadResult & { cpuMs: number }) | undefined;
    child.on('message', (message: { result?: LoadResult & { cpuMs: number }; error?: string }) => {
      if (message.error) reject(new Error(message.error));
      // Into this process's performance.now(), which the sink's times are in.
      else if (message.result) {
        const local = (wall: number) => wall - performance.timeOrigin;
        result = { ...message.result, firstAt: local(message.result.firstAt), lastAt: local(message.result.lastAt) };
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`load generator exited with ${code}`))));
    child.send(spec);
  });
}
