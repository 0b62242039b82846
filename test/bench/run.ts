/**
 * `npm run bench [-- --quick] [-- --only NAME,NAME] [-- --store sqlite|postgres|both] [-- --engine raw|nodemailer|both] [-- --workers 1,2] [-- --server relay|postfix|both] [-- --profile DIR]`:
 * the relay's throughput, latency, CPU and memory under load, one scenario at a time, each on a
 * fresh relay process and a fresh database (see README "Benchmark"). With PostgreSQL, each row
 * also gives the database's statements, commits and WAL bytes per message, and the `nodes`
 * scenario runs 1, 2 and 3 nodes on one database. The load generator runs in a child process
 * (load-process.ts) with either engine; with both, each scenario runs once per engine, one after
 * the other, so the two rows share the machine's conditions; `--workers` likewise runs each
 * scenario once per count of submission workers (default: the config's default, auto). `--server postfix` (or both)
 * runs the pooled and connection-per-message scenarios against Postfix + OpenDKIM + Dovecot (postfix.ts), right after
 * the relay's run of each with `both`, for the comparison the performance targets are stated in. Prints a table at the end and a
 * `BENCH {json}` line per scenario as it finishes. Not a test: nothing here passes or fails on speed.
 */
import { createTestDatabase } from '../helpers/postgres.js';
import { percentile, type Engine, type LoadResult, type Target } from './load.js';
import { runLoad } from './load-process.js';
import { newRelayDir, startBenchEnv, type BenchDatabase, type BenchEnv, type RelayDir } from './env.js';
import { PgProbe, perMessage } from './pg-probe.js';
import { startPostfix } from './postfix.js';
import { startRelayProcess, type RelayProcess } from './relay-process.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : (args[i + 1] ?? '');
};
const quick = args.includes('--quick');
const only = flag('--only')?.split(',');
const profileDir = flag('--profile');
const engineFlag = flag('--engine') ?? 'both';
if (!['raw', 'nodemailer', 'both'].includes(engineFlag)) throw new Error(`--engine takes raw, nodemailer or both, not "${engineFlag}"`);
const ENGINES: Engine[] = engineFlag === 'both' ? ['raw', 'nodemailer'] : [engineFlag as Engine];
const WORKERS: (number | 'auto')[] = (flag('--workers') ?? 'auto').split(',').map((w) => (w === 'auto' ? 'auto' : Number(w)));
/** The submission workers of the scenarios now running, and the suffix their rows get when several counts are compared. */
let workers: number | 'auto' = 'auto';
const workersLabel = () => (WORKERS.length > 1 ? `/w${workers}` : '');
const storeFlag = flag('--store') ?? 'sqlite';
if (!['sqlite', 'postgres', 'both'].includes(storeFlag)) throw new Error(`--store takes sqlite, postgres or both, not "${storeFlag}"`);
const STORES = storeFlag === 'both' ? (['sqlite', 'postgres'] as const) : [storeFlag as 'sqlite' | 'postgres'];
/** The store of the scenarios now running. */
let store: 'sqlite' | 'postgres' = 'sqlite';
const serverFlag = flag('--server') ?? 'relay';
if (!['relay', 'postfix', 'both'].includes(serverFlag)) throw new Error(`--server takes relay, postfix or both, not "${serverFlag}"`);
const SERVERS = serverFlag === 'both' ? (['relay', 'postfix'] as const) : [serverFlag as 'relay' | 'postfix'];
/** The server the scenarios now running measure. */
let server: 'relay' | 'postfix' = 'relay';

/** What a scenario measures and sends to: a relay process or a Postfix instance. */
type Server = Omit<RelayProcess, 'pid'>;
type Credentials = { user: string; pass: string };

/** Run lengths: --quick takes two to three minutes in all; the full run about fifteen. */
const SIZES = quick
  ? { durationMs: 5_000, rateDurationMs: 6_000, backlog: 10_000, probe: 3_000 }
  : { durationMs: 20_000, rateDurationMs: 20_000, backlog: 100_000, probe: 10_000 };
/** Waiting for delivery gives up when the sink has received nothing for this long. */
const STALL_MS = 30_000;
const LONG_MS = 30 * 60_000;
const WARMUP_MESSAGES = 200;

interface Row {
  scenario: string;
  messages: number;
  failed: number;
  accepted_per_s: number;
  p50_ms: number;
  p99_ms: number;
  e2e_per_s: number | null;
  cpu_ms_per_msg: number;
  peak_rss_mb: number;
  /** CPU of the load generator's process: the relay's competition for the cores. */
  load_cpu_ms_per_msg?: number;
  /** CPU of the bench process (sink, DNS). */
  bench_cpu_ms_per_msg?: number;
  /** PostgreSQL only: the database's work per message. */
  db_statements_per_msg?: number | null;
  db_commits_per_msg?: number;
  wal_bytes_per_msg?: number;
  db_cpu_ms_per_msg?: number;
  note?: string;
}

const rows: Row[] = [];

function report(row: Row): void {
  // Postfix has no submission workers or store of the relay's to tell apart.
  const suffix = server === 'postfix' ? '@postfix' : `${workersLabel()}${store === 'postgres' ? '@pg' : ''}`;
  row = { ...row, scenario: `${row.scenario}${suffix}` };
  rows.push(row);
  console.log(`BENCH ${JSON.stringify(row)}`);
}

const round = (n: number, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : NaN);

/** The figures of one measured load on one server (or several relay nodes). */
async function measure(
  env: BenchEnv,
  relay: Server | Server[],
  scenario: string,
  load: () => Promise<LoadResult & { cpuMs: number }>,
  options: { delivered: boolean; note?: string; probe?: PgProbe },
): Promise<Row> {
  const relays = Array.isArray(relay) ? relay : [relay];
  const cpuMs = () => relays.reduce((sum, r) => sum + r.cpuMs(), 0);
  env.sink.reset();
  for (const r of relays) r.resetPeak();
  const cpuBefore = cpuMs();
  const benchCpuBefore = process.cpuUsage();
  const dbBefore = await options.probe?.read();
  const result = await load();
  if (options.delivered) await env.sink.waitFor(result.accepted, STALL_MS);
  const cpu = cpuMs() - cpuBefore;
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const dbAfter = await options.probe?.read();
  if (result.firstError) console.error(`${scenario}: ${result.failed} failed, first: ${result.firstError}`);
  const seconds = (to: number) => (to - result.firstAt) / 1000;
  return {
    scenario,
    messages: result.accepted,
    failed: result.failed,
    accepted_per_s: round(result.accepted / seconds(result.lastAt), 0),
    p50_ms: round(percentile(result.latenciesMs, 50)),
    p99_ms: round(percentile(result.latenciesMs, 99)),
    e2e_per_s: options.delivered ? round(result.accepted / seconds(env.sink.lastAt), 0) : null,
    cpu_ms_per_msg: round(cpu / result.accepted, 2),
    peak_rss_mb: round(Math.max(...relays.map((r) => r.peakRssMb())), 0),
    load_cpu_ms_per_msg: round(result.cpuMs / result.accepted, 2),
    bench_cpu_ms_per_msg: round((benchCpu.user + benchCpu.system) / 1000 / result.accepted, 2),
    ...(dbBefore && dbAfter ? perMessage(dbBefore, dbAfter, result.accepted) : {}),
    ...(options.note || result.resumed !== undefined
      ? { note: [options.note, result.resumed !== undefined && `${result.resumed} TLS sessions resumed`].filter(Boolean).join('; ') }
      : {}),
  };
}

/** A database for one scenario: the relay's own SQLite file, or a fresh PostgreSQL database with a probe. */
async function scenarioDatabase(): Promise<{ db: BenchDatabase; probe?: PgProbe; drop(): Promise<void> }> {
  if (store === 'sqlite') return { db: { kind: 'sqlite' }, drop: async () => {} };
  const database = await createTestDatabase();
  const probe = await PgProbe.open(database.url);
  return {
    db: { kind: 'postgres', url: database.url },
    probe,
    async drop() {
      await probe.close();
      await database.drop();
    },
  };
}

function target(creds: Credentials, relay: Server, implicitTls = false): Target {
  return { port: relay.ports[implicitTls ? 'smtps' : 'submission']!, implicitTls, user: creds.user, pass: creds.pass };
}

async function startRelay(dir: RelayDir): Promise<RelayProcess> {
  return startRelayProcess({ configFile: dir.configFile, cpuProfileDir: profileDir || undefined });
}

/** `messages` of 4 KB on pooled connections, waited for at the sink when they are delivered. */
async function warmUp(env: BenchEnv, engine: Engine, to: Target | Target[], messages: number, delivered: boolean, connections = 4) {
  const warm = await runLoad({ kind: 'pooled', engine, target: to, size: 4096, connections, messages, durationMs: 60_000 });
  if (delivered) await env.sink.waitFor(warm.accepted, STALL_MS);
}

/**
 * A fresh server, warmed up (JIT, key cache, outbound sessions) before the measured load: a relay
 * on a new database, or with `server` postfix a new Postfix instance (which ignores `paused`).
 */
async function withServer<T>(
  env: BenchEnv,
  engine: Engine,
  name: string,
  paused: boolean,
  fn: (creds: Credentials, server: Server, probe: PgProbe | undefined) => Promise<T>,
): Promise<T> {
  const database = server === 'relay' ? await scenarioDatabase() : undefined;
  try {
    let running: Server, creds: Credentials;
    if (database) {
      const dir = await newRelayDir(env, name, paused, database.db, workers);
      [running, creds] = [await startRelay(dir), dir];
    } else running = creds = await startPostfix(env, name);
    try {
      env.sink.reset();
      await warmUp(env, engine, target(creds, running), WARMUP_MESSAGES, !paused);
      return await fn(creds, running, database?.probe);
    } finally {
      await running.stop();
    }
  } finally {
    await database?.drop();
  }
}

function pooledScenario(name: string, connections: number, size: number, implicitTls: boolean, ratePerSecond?: number) {
  return async (env: BenchEnv, engine: Engine) =>
    withServer(env, engine, name, false, async (creds, server, probe) =>
      report(
        await measure(
          env,
          server,
          `${name}/${engine}`,
          () =>
            runLoad({
              kind: 'pooled',
              engine,
              target: target(creds, server, implicitTls),
              size,
              connections,
              messages: Infinity,
              durationMs: ratePerSecond ? SIZES.rateDurationMs : SIZES.durationMs,
              ratePerSecond,
            }),
          { delivered: true, probe, note: ratePerSecond ? `${ratePerSecond} msg/s offered` : undefined },
        ),
      ),
    );
}

/** A new connection per message; with resumeTls (raw engine) each client offers its previous TLS session. */
function connectionPerMessage(name: string, resumeTls: boolean) {
  return async (env: BenchEnv, engine: Engine) => {
    if (resumeTls && engine !== 'raw') return;
    await withServer(env, engine, name, false, async (creds, server, probe) =>
      report(
        await measure(
          env,
          server,
          `${name}/${engine}`,
          () =>
            runLoad({
              kind: 'per-message',
              engine,
              target: target(creds, server),
              size: 4096,
              concurrency: 8,
              messages: Infinity,
              durationMs: SIZES.durationMs,
              resumeTls,
            }),
          { delivered: true, probe, note: 'STARTTLS + AUTH per message' },
        ),
      ),
    );
  };
}

/**
 * Accept rate with an empty queue and with a backlog (delivery paused), then the dequeue rate
 * of a relay restarted with delivery on, for a small queue and for the backlog.
 */
async function backlog(env: BenchEnv, engine: Engine): Promise<void> {
  const load = (dir: RelayDir, relay: RelayProcess, connections: number, messages: number, durationMs: number) =>
    runLoad({ kind: 'pooled', engine, target: target(dir, relay), size: 4096, connections, messages, durationMs });
  const probe = (dir: RelayDir, relay: RelayProcess) => () => load(dir, relay, 8, SIZES.probe, 10 * 60_000);

  for (const queued of [0, SIZES.backlog]) {
    const label = queued === 0 ? 'empty queue' : `${queued} queued`;
    const database = await scenarioDatabase();
    const dir = await newRelayDir(env, `backlog-${queued}`, true, database.db, workers);
    let relay = await startRelay(dir);
    let pending = 0;
    try {
      await load(dir, relay, 4, WARMUP_MESSAGES, 60_000);
      pending += WARMUP_MESSAGES;
      if (queued > 0) {
        const started = performance.now();
        const fill = await load(dir, relay, 32, queued, LONG_MS);
        pending += fill.accepted;
        console.error(`backlog: queued ${fill.accepted} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
      const accept = await measure(env, relay, `accept, ${label}`, probe(dir, relay), {
        delivered: false,
        probe: database.probe,
        note: 'delivery paused',
      });
      pending += accept.messages;
      report({ ...accept, scenario: `backlog-accept-${queued}/${engine}` });
    } finally {
      await relay.stop();
    }

    // Dequeue: delivery on; rate over the first `probe` messages and over the whole queue.
    dir.setPaused(false);
    env.sink.reset();
    const cpuStart = { ms: 0 };
    relay = await startRelay(dir);
    try {
      cpuStart.ms = relay.cpuMs();
      const started = performance.now();
      await env.sink.waitFor(SIZES.probe, STALL_MS);
      const firstProbe = (SIZES.probe / (env.sink.lastAt - started)) * 1000;
      await env.sink.waitFor(pending, STALL_MS);
      const all = (pending / (env.sink.lastAt - started)) * 1000;
      report({
        scenario: `backlog-dequeue-${queued}/${engine}`,
        messages: pending,
        failed: 0,
        accepted_per_s: NaN,
        p50_ms: NaN,
        p99_ms: NaN,
        e2e_per_s: round(firstProbe, 0),
        cpu_ms_per_msg: round((relay.cpuMs() - cpuStart.ms) / pending, 2),
        peak_rss_mb: round(relay.peakRssMb(), 0),
        note: `dequeue msg/s: first ${SIZES.probe} ${round(firstProbe, 0)}, all ${round(all, 0)}`,
      });
    } finally {
      await relay.stop();
      await database.drop();
    }
  }
}

/**
 * Several nodes on one PostgreSQL database (PostgreSQL runs only): 8 pooled connections shared
 * round-robin by 1, 2 and 3 nodes, each node delivering. On a 2-core machine the nodes share the
 * cores, so the interesting figures are the per-message costs, not the aggregate rate.
 */
async function nodes(env: BenchEnv, engine: Engine): Promise<void> {
  if (store !== 'postgres') return;
  for (const count of [1, 2, 3]) {
    const database = await scenarioDatabase();
    const url = (database.db as Extract<BenchDatabase, { kind: 'postgres' }>).url;
    const relays: RelayProcess[] = [];
    try {
      const first = await newRelayDir(env, `nodes-${count}-1`, false, { kind: 'postgres', url, node: 'node-1' });
      const dirs = [first];
      for (let n = 2; n <= count; n++) {
        dirs.push(
          await newRelayDir(env, `nodes-${count}-${n}`, false, {
            kind: 'postgres',
            url,
            node: `node-${n}`,
            creds: { user: first.user, pass: first.pass },
          }),
        );
      }
      for (const dir of dirs) relays.push(await startRelay(dir));
      const targets = dirs.map((dir, i) => target(dir, relays[i]!));
      env.sink.reset();
      await warmUp(env, engine, targets, WARMUP_MESSAGES, true, 4 * count);
      const name = `nodes-${count}/${engine}`;
      report(
        await measure(
          env,
          relays,
          name,
          () =>
            runLoad({
              kind: 'pooled',
              engine,
              target: targets,
              size: 4096,
              connections: 8,
              messages: Infinity,
              durationMs: SIZES.durationMs,
            }),
          {
            delivered: true,
            probe: database.probe,
            note: `${count} node${count > 1 ? 's' : ''}, 8 connections round-robin; cpu summed over nodes`,
          },
        ),
      );
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
      await database.drop();
    }
  }
}

/** One 25 MB message through a warmed relay: its peak RSS above the idle RSS before it. */
async function bigMessage(env: BenchEnv, engine: Engine): Promise<void> {
  const size = 25_000_000;
  await withServer(env, engine, 'big-25mb', false, async (creds, relay) => {
    const fresh = relay.rssMb();
    // A relay that has been at work: SQLite's page cache (16 MB in better-sqlite3's build) is
    // full, so the figure is what the message costs, not the cache filling up once.
    await warmUp(env, engine, target(creds, relay), 5000, true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idle = relay.rssMb();
    const row = await measure(
      env,
      relay,
      `big-25mb/${engine}`,
      () => runLoad({ kind: 'pooled', engine, target: target(creds, relay), size, connections: 1, messages: 1, durationMs: 120_000 }),
      { delivered: true },
    );
    const costMb = row.peak_rss_mb - idle;
    report({
      ...row,
      note: `idle RSS ${round(idle, 0)} MB after 5,000 small messages (${round(fresh, 0)} MB fresh), peak +${round(costMb, 0)} MB = ${round((costMb * 1024 * 1024) / size, 2)}x the message size`,
    });
  });
}

/**
 * Scenarios marked `once` run with the first engine only: their figures are the relay's, whatever the client.
 * Those marked `postfix` also run against Postfix with `--server postfix|both`.
 */
const SCENARIOS: [string, (env: BenchEnv, engine: Engine) => Promise<void>, { once?: boolean; postfix?: boolean }?][] = [
  ['pooled-8x4k', pooledScenario('pooled-8x4k', 8, 4096, false), { postfix: true }],
  ['pooled-32x4k', pooledScenario('pooled-32x4k', 32, 4096, false), { postfix: true }],
  ['pooled-8x50k', pooledScenario('pooled-8x50k', 8, 50 * 1024, false), { postfix: true }],
  ['pooled-8x4k-465', pooledScenario('pooled-8x4k-465', 8, 4096, true), { postfix: true }],
  ['conn-per-msg-8x4k', connectionPerMessage('conn-per-msg-8x4k', false), { postfix: true }],
  ['conn-per-msg-resumed-8x4k', connectionPerMessage('conn-per-msg-resumed-8x4k', true), { postfix: true }],
  ['rate-500', pooledScenario('rate-500', 8, 4096, false, 500), { postfix: true }],
  ['backlog', backlog, { once: true }],
  ['big-25mb', bigMessage, { once: true }],
  ['nodes', nodes, { once: true }],
];

function printTable(): void {
  const columns: (keyof Row)[] = [
    'scenario',
    'messages',
    'failed',
    'accepted_per_s',
    'p50_ms',
    'p99_ms',
    'e2e_per_s',
    'cpu_ms_per_msg',
    'peak_rss_mb',
    'load_cpu_ms_per_msg',
    'bench_cpu_ms_per_msg',
    'db_statements_per_msg',
    'db_commits_per_msg',
    'wal_bytes_per_msg',
    'db_cpu_ms_per_msg',
    'note',
  ];
  const cell = (v: unknown) => (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log('');
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
}

const env = await startBenchEnv();
try {
  for (const current of STORES) {
    store = current;
    for (const [name, scenario, options] of SCENARIOS) {
      if (only && !only.includes(name)) continue;
      const servers = SERVERS.filter((s) => s === 'relay' || options?.postfix);
      if (servers.length < SERVERS.length && store === STORES[0])
        console.error(`-- ${name}: no Postfix run (only the pooled, connection-per-message and rate scenarios have one)`);
      for (const engine of options?.once ? ENGINES.slice(0, 1) : ENGINES) {
        for (const count of WORKERS) {
          workers = count;
          for (const current of servers) {
            server = current;
            // Postfix is the same whatever the relay's store and workers: once per engine.
            if (server === 'postfix' && (store !== STORES[0] || count !== WORKERS[0])) continue;
            console.error(`-- ${name} (${server === 'postfix' ? 'postfix' : `${store}, workers ${count}`}, ${engine})`);
            await scenario(env, engine);
          }
        }
      }
    }
  }
} finally {
  await env.stop();
}
printTable();
