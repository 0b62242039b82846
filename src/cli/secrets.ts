/** `relay secrets ...`: the key DKIM private keys and webhook secrets are encrypted with at rest. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { countedSecrets } from '../secrets/at-rest.js';
import { isSealed } from '../secrets/cipher.js';
import { configuredSecretsKey, readSecretsKeyFile } from '../secrets/key.js';
import { CliError, type Cli } from './context.js';
import { print, printJson } from './output.js';

export function registerSecretsCommands(program: Command, cli: Cli): void {
  const secrets = program.command('secrets').description('encryption at rest of DKIM private keys and webhook secrets');

  secrets
    .command('new-key <file>')
    .description('write a new random 32-byte key (base64) to FILE, readable by its owner only')
    .action((file: string) => {
      try {
        writeFileSync(path.resolve(file), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        throw new CliError(`cannot create ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      print(`Wrote a new secrets key to ${file}. Keep a copy apart from the database: without it, encrypted secrets are lost.`);
    });

  secrets
    .command('rekey')
    .description('encrypt every DKIM key and webhook secret with the key in FILE (plain ones too), in one transaction')
    .requiredOption('--new-key-file <file>', 'the key to encrypt with from now on (make one with `relay secrets new-key FILE`)')
    .option('--json', 'print JSON')
    .action((opts: { newKeyFile: string; json?: boolean }) =>
      cli.withStorage(async (storage, config, audit) => {
        const next = readSecretsKeyFile(path.resolve(opts.newKeyFile), `--new-key-file ${opts.newKeyFile}`);
        // Opening the storage has checked that every sealed secret is under the current key.
        const current = configuredSecretsKey(config);
        const stored = await storage.secrets.list();
        const changes = stored.map((s) => ({
          ...s,
          from: s.value,
          value: next.seal(current ? current.open(s.value, s.kind) : s.value, s.kind),
        }));
        const rewritten = await storage.secrets.replace(changes);
        if (rewritten !== changes.length)
          throw new CliError('secrets changed while they were re-encrypted: run `relay secrets rekey` again');
        const wasPlain = countedSecrets(stored).filter((s) => !isSealed(s.value)).length;
        const secrets = countedSecrets(stored).length;
        await audit.record({
          actor: cli.actor(),
          action: 'secrets.rekey',
          target: 'secrets',
          change: { from_key: current?.id ?? null, to_key: next.id, secrets, were_plain: wasPlain },
        });
        if (opts.json) return printJson({ key: next.id, secrets, were_plain: wasPlain });
        print(`Encrypted ${secrets} secrets under key ${next.id}${wasPlain ? ` (${wasPlain} were stored in plain text)` : ''}.`);
        print(`Now set secrets.key_file to ${opts.newKeyFile} (or RELAY_SECRETS_KEY to its content) and restart every relay node.`);
      }),
    );
}
