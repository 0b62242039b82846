/**
 * The key secrets are sealed with at rest: `secrets.key_file` (relative to the config file) or
 * the environment variable RELAY_SECRETS_KEY, 32 bytes written as base64 or hex. Neither set:
 * secrets are stored in plain text (the default).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import type { RelayConfig } from '../config/schema.js';
import { SecretCipher } from './cipher.js';

export const KEY_ENV = 'RELAY_SECRETS_KEY';

/** A missing, unreadable or wrong key: a config problem (exit status 2 in the CLI). */
export class SecretsKeyError extends ConfigError {}

const HEX = /^[0-9a-f]{64}$/i;
const BASE64 = /^[A-Za-z0-9+/_-]{43}=?$/;

/** 32 bytes from base64 (44 characters) or hex (64); `where` names the setting in errors. */
export function parseSecretsKey(text: string, where: string): SecretCipher {
  const trimmed = text.trim();
  const key = HEX.test(trimmed) ? Buffer.from(trimmed, 'hex') : BASE64.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
  if (key?.length !== 32) {
    throw new SecretsKeyError(
      `${where}: expected 32 bytes written as base64 (44 characters) or hex (64); make one with \`relay secrets new-key FILE\``,
    );
  }
  return new SecretCipher(key);
}

export function readSecretsKeyFile(file: string, where = file): SecretCipher {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SecretsKeyError(`${where}: cannot read the key file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseSecretsKey(text, where);
}

/** The configured key, or undefined when secrets are stored in plain text. */
export function configuredSecretsKey(config: Partial<Pick<RelayConfig, 'secrets' | 'source'>>): SecretCipher | undefined {
  const fromEnv = process.env[KEY_ENV];
  const file = config.secrets?.key_file;
  if (fromEnv && file) throw new SecretsKeyError(`both ${KEY_ENV} and secrets.key_file (in ${config.source}) are set: keep one`);
  if (fromEnv) return parseSecretsKey(fromEnv, KEY_ENV);
  if (file) return readSecretsKeyFile(file, `secrets.key_file ${file} (in ${config.source})`);
  return undefined;
}
