/**
 * A submission worker's process: node:cluster forks this file (supervisor.ts) rather than the
 * CLI, so a worker loads only what it serves with and starts sooner after a restart. The
 * primary names the config file it runs on in RELAY_WORKER_CONFIG.
 */
import { loadConfig, parseConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { runSubmissionWorker } from './worker.js';

const source = process.env.RELAY_WORKER_CONFIG;
const config = source ? loadConfig(source) : parseConfig({});
await runSubmissionWorker(config, createLogger(config.log.level, { redactRecipients: config.log.redact_recipients }));
