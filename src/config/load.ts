/**
 * Finds, reads and validates the relay's YAML config. The file is `--config FILE`, else
 * $RELAY_CONFIG, else ./relay.yaml, else ./relay.example.yaml; with none of them the schema's
 * defaults apply (the embedded default). Paths in the file are relative to the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { isPostgresUrl } from './database.js';
import { configSchema, type RelayConfig } from './schema.js';

export class ConfigError extends Error {}

/** The packaged config/ folder (bounce rules and other data shipped with Relay). */
export const PACKAGED_CONFIG_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config');

export function findConfigFile(explicit?: string, cwd = process.cwd()): string | undefined {
  if (explicit) return path.resolve(cwd, explicit);
  if (process.env.RELAY_CONFIG) return path.resolve(cwd, process.env.RELAY_CONFIG);
  for (const name of ['relay.yaml', 'relay.example.yaml']) {
    const candidate = path.resolve(cwd, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export function loadConfig(explicit?: string, cwd = process.cwd()): RelayConfig {
  const file = findConfigFile(explicit, cwd);
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) {
      throw new ConfigError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
    }
    raw = doc.toJS() ?? {};
  }
  return parseConfig(raw, file);
}

/** The config `config` was read from, read again (SIGHUP; a submission worker's start). */
export function rereadConfig(config: RelayConfig): RelayConfig {
  return loadConfig(config.source === '(embedded default)' ? undefined : config.source);
}

export function parseConfig(raw: unknown, file?: string): RelayConfig {
  const source = file ?? '(embedded default)';
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.length ? issue.path.join('.') : '(top level)';
      return `  ${key}: ${issue.message}`;
    });
    throw new ConfigError(`invalid config in ${source}:\n${lines.join('\n')}`);
  }
  const baseDir = file ? path.dirname(file) : process.cwd();
  const config = result.data;
  const resolve = (p: string) => path.resolve(baseDir, p);
  const databaseFile = config.database !== ':memory:' && !isPostgresUrl(config.database);
  const database = databaseFile ? resolve(config.database) : config.database;
  // A generated pair lives with the database file: the one directory the relay must be able to write.
  const selfSignedDir = databaseFile ? path.dirname(database) : resolve('data');
  return {
    ...config,
    database,
    tls:
      config.tls === 'self_signed'
        ? {
            pairs: [
              {
                cert: path.join(selfSignedDir, 'self-signed-ecdsa.crt'),
                key: path.join(selfSignedDir, 'self-signed-ecdsa.key'),
                generate: 'ecdsa',
              },
              { cert: path.join(selfSignedDir, 'self-signed.crt'), key: path.join(selfSignedDir, 'self-signed.key'), generate: 'rsa' },
            ],
            selfSigned: true,
          }
        : { pairs: [config.tls].flat().map((pair) => ({ cert: resolve(pair.cert), key: resolve(pair.key) })), selfSigned: false },
    secrets: { ...config.secrets, ...(config.secrets.key_file && { key_file: resolve(config.secrets.key_file) }) },
    delivery: { ...config.delivery, ...(config.delivery.tls_ca_file && { tls_ca_file: resolve(config.delivery.tls_ca_file) }) },
    bounces: {
      ...config.bounces,
      rules: config.bounces.rules ? resolve(config.bounces.rules) : path.join(PACKAGED_CONFIG_DIR, 'bounce-rules.yaml'),
    },
    shaping: { ...config.shaping, ...(config.shaping.rules && { rules: resolve(config.shaping.rules) }) },
    source,
    baseDir,
  };
}
