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
  const processes = () => processTree(pid);
  return {
    pid,
    ports,
    // A worker that exits takes its CPU time along; the bench never stops workers mid-run.
    cpuMs: () => processes().reduce((sum, p) => sum + cpuMsOf(p), 0),
    rssMb: () => statusMb(processes(), 'VmRSS'),
    peakRssMb: () => statusMb(processes(), 'VmHWM'),
    resetPeak: () => clearPeaks(processes()),
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

/** `pid` and its descendants (for the relay: its submission workers), from /proc/PID/stat's ppid field. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const ppid = /^\d+$/.test(name) ? Number(statFields(Number(name))?.[1]) : NaN;
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** /proc/PID/stat's fields after the parenthesised command name (state first, so utime is [11]); undefined once it is gone. */
export function statFields(pid: number): string[] | undefined {
  const stat = readProc(pid, 'stat');
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * A process's CPU time in ms (utime + stime, fields 14 and 15), with `reaped` also that of its
 * children it has waited for (cutime + cstime, 16 and 17); 0 once it is gone.
 */
export function cpuMsOf(pid: number, reaped = false): number {
  const fields = statFields(pid);
  if (!fields) return 0;
  const ticks = [11, 12, ...(reaped ? [13, 14] : [])].reduce((sum, i) => sum + Number(fields[i]), 0);
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** A /proc/PID/status memory field (VmRSS, VmHWM) summed over processes, in MB. */
export function statusMb(pids: number[], field: string): number {
  return pids.reduce((sum, p) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readProc(p, 'status') ?? '');
    return sum + (match ? Number(match[1]) / 1024 : 0);
  }, 0);
}

/** Resets the processes' peak RSS (VmHWM); one that has exited meanwhile is skipped. */
export function clearPeaks(pids: number[]): void {
  for (const p of pids) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // Gone since it was listed.
    }
  }
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}
