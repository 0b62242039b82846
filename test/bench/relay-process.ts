/**
 * The relay under test, as a child process (`node bin/relay.js serve`), so its own CPU time and
 * memory can be read from /proc: utime+stime from /proc/PID/stat, VmRSS and VmHWM (peak RSS)
 * from /proc/PID/status. Writing 5 to /proc/PID/clear_refs resets the peak between phases.
 * With submission workers every figure is summed over the primary and its children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN } from '../helpers/cli.js';

/** Linux reports CPU times in clock ticks of 1/100 s (USER_HZ) on every common architecture. */
const TICKS_PER_SECOND = 100;

export interface RelayProcess {
  pid: number;
  ports: Record<string, number>;
  /** The relay's CPU time (all threads, user + system) in ms. */
  cpuMs(): number;
  /** Resident memory now and its peak since the last resetPeak(), in MB. */
  rssMb(): number;
  peakRssMb(): number;
  resetPeak(): void;
  stop(): Promise<void>;
}

export interface RelayProcessOptions {
  configFile: string;
  /** Write a V8 CPU profile (.cpuprofile) into this directory when the relay exits. */
  cpuProfileDir?: string;
}

export async function startRelayProcess(options: RelayProcessOptions): Promise<RelayProcess> {
  const dir = path.dirname(options.configFile);
  const logFile = path.join(dir, 'relay.log');
  const logFd = openSync(logFile, 'w');
  const nodeArgs = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  // The relay logs (info, as in production) straight into a file, not through the bench process.
  const child = spawn(process.execPath, [...nodeArgs, BIN, '--config', options.configFile, 'serve'], {
    cwd: dir,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, RELAY_CONFIG: undefined },
  });
  closeSync(logFd);
  const ports = await waitForStart(child, logFile);
  const pid = child.pid!;
  /** The primary and its workers; a worker that has exited meanwhile reads as 0. */
  const processes = () => [pid, ...childrenOf(pid)];
  const read = (p: number, file: string) => {
    try {
      return readFileSync(`/proc/${p}/${file}`, 'utf8');
    } catch {
      return undefined;
    }
  };
  const status = (field: string) =>
    processes().reduce((sum, p) => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(read(p, 'status') ?? '');
      return sum + (match ? Number(match[1]) / 1024 : 0);
    }, 0);
  // A worker that exits takes its CPU time along; the bench never stops workers mid-run.
  const cpuOf = (p: number) => {
    const stat = read(p, 'stat');
    if (!stat) return 0;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  };

  return {
    pid,
    ports,
    cpuMs: () => processes().reduce((sum, p) => sum + cpuOf(p), 0),
    rssMb: () => status('VmRSS'),
    peakRssMb: () => status('VmHWM'),
    resetPeak: () => processes().forEach((p) => writeFileSync(`/proc/${p}/clear_refs`, '5')),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Polls the log for pino's "relay started" line, which carries the bound ports. */
async function waitForStart(child: ChildProcess, logFile: string): Promise<Record<string, number>> {
  for (let waited = 0; waited < 120_000; waited += 50) {
    if (child.exitCode !== null) throw new Error(`relay exited with ${child.exitCode} before it started; see ${logFile}`);
    const line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"relay started"'));
    if (line) return (JSON.parse(line) as { listeners: Record<string, number> }).listeners;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`relay did not start within 120 s; see ${logFile}`);
}

/** Child processes of `pid` (the relay's submission workers), from /proc/PID/stat's ppid field. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(name));
    } catch {
      // Gone since the listing.
    }
  }
  return children;
}
