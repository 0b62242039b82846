/**
 * The soak run: `npm run soak -- --minutes N [--clients C] [--workers auto|N]`. Runs `relay serve` (the compiled
 * CLI) against a loopback DNS server and sink, holds load from C pooled client apps for N
 * minutes, then waits for the queue to drain and reports throughput, the relay's memory over
 * the run and lost messages. Exits 1 if any acknowledged message was lost. Loopback only.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { assertBuilt } from '../helpers/cli.js';
import { startDnsServer } from '../helpers/dns.js';
import { compare, submitLoad, tallySink, type SinkTally } from '../helpers/load.js';
import { kill, prepareServe, startServe } from '../helpers/serve.js';
import { startSink } from '../helpers/sink.js';
import { waitFor } from '../helpers/wait.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    clients: { type: 'string', default: '8' },
    workers: { type: 'string', default: 'auto' },
  },
});
const minutes = Number(values.minutes);
const clients = Number(values.clients);
const workers = values.workers === 'auto' ? 'auto' : Number(values.workers);
if (!(minutes > 0) || !(clients > 0) || !(workers === 'auto' || workers >= 1)) {
  throw new Error('usage: npm run soak -- --minutes N [--clients C] [--workers auto|N]');
}

/** Resident memory of a process in MB (Linux /proc). */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

assertBuilt();
const sink = await startSink({ host: '127.0.0.2' });
const dns = await startDnsServer({
  'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
  'mx.example.net': { a: ['127.0.0.2'] },
});
const setup = await prepareServe({
  workers,
  delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port },
  log: { level: 'warn' },
});
const serve = await startServe(setup);
const pid = serve.child.pid!;

const tally: SinkTally = { deliveries: new Map() };
const samples: { at: number; rss: number }[] = [];
const started = Date.now();
const deadline = started + minutes * 60_000;
const sampler = setInterval(() => {
  tallySink(sink, { into: tally, clear: true });
  samples.push({ at: Date.now() - started, rss: rssMb(pid) });
}, 1000);

console.log(`soak: ${minutes} min, ${clients} clients, relay pid ${pid}`);
const report = await submitLoad({ port: setup.port, creds: setup.creds, clients, stop: () => Date.now() >= deadline, prefix: 'soak' });
const submitSeconds = (Date.now() - started) / 1000;
await waitFor(
  () => {
    tallySink(sink, { into: tally, clear: true });
    return compare(report, tally).lost.length === 0;
  },
  'the queue to drain',
  120_000,
).catch(() => {});
const drainedSeconds = (Date.now() - started) / 1000;
clearInterval(sampler);
tallySink(sink, { into: tally, clear: true });
const { lost, relayDuplicates, resubmissionDuplicates } = compare(report, tally);

// Memory growth: the last sample against the first one after a warm-up of a tenth of the run.
const warm = samples.find((s) => s.at >= (minutes * 60_000) / 10) ?? samples[0]!;
const last = samples[samples.length - 1]!;
const peak = Math.max(...samples.map((s) => s.rss));
const exit = await kill(serve, 'SIGTERM');
await sink.stop();
await dns.stop();

const acknowledged = report.acknowledged.size;
console.log(
  [
    `messages acknowledged: ${acknowledged} (${(acknowledged / submitSeconds).toFixed(0)}/s submitted over ${submitSeconds.toFixed(0)} s)`,
    `delivered: ${tally.deliveries.size} (queue drained ${(drainedSeconds - submitSeconds).toFixed(1)} s after the load stopped)`,
    `relay RSS: ${warm.rss.toFixed(0)} MB after warm-up, ${last.rss.toFixed(0)} MB at the end (growth ${(last.rss - warm.rss).toFixed(0)} MB), peak ${peak.toFixed(0)} MB`,
    `lost: ${lost.length}; duplicates: ${relayDuplicates} relay, ${resubmissionDuplicates} resubmission; client retries: ${report.retries}; refused: ${report.refused.length}`,
    `relay exit on SIGTERM: ${exit}`,
  ].join('\n'),
);
process.exit(lost.length === 0 && report.refused.length === 0 ? 0 : 1);
