/**
 * The database holds DKIM private keys, so Relay creates it readable by its own user only: the
 * data directory 0700 and the file 0600 (SQLite gives its -wal and -shm files the database
 * file's mode). Existing directories and files are left as the operator set them.
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';

export function createPrivateDatabaseFile(file: string): void {
  const dir = path.dirname(file);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
}
