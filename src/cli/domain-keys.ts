/** `relay domain rotate-key | activate-key | keys`: a sender domain's DKIM keys through their lifecycle. */
import { Option, type Command } from 'commander';
import type { RelayConfig } from '../config/schema.js';
import { createResolver } from '../delivery/resolver.js';
import { activateKeys, keyDnsAction, KeyLifecycleError, keyStateLabel, rotateKey, type KeyAlgorithmChoice } from '../domains/dkim-keys.js';
import type { DkimKeyRecord, Storage } from '../queue/storage.js';
import { CliError, type Cli } from './context.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';
import { domainName } from '../management/names.js';

async function requireKnownDomain(storage: Storage, input: string): Promise<string> {
  const name = domainName(input);
  if (!(await storage.domains.get(name))) throw new CliError(`unknown domain ${name}: add it with \`relay domain add ${name}\``);
  return name;
}

/** The lifecycle's refusals are the operator's to act on: printed as they are, exit 1. */
async function refusalsAsCliErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof KeyLifecycleError) throw new CliError(err.message);
    throw err;
  }
}

/** What a rotation makes when --algorithm is not given: keys of the kinds that sign now. */
function currentChoice(keys: DkimKeyRecord[]): KeyAlgorithmChoice {
  const algorithms = new Set(keys.filter((k) => k.state === 'active').map((k) => k.algorithm));
  if (algorithms.size > 1) return 'both';
  return algorithms.has('ed25519') ? 'ed25519' : 'rsa';
}

export function keyJson(key: DkimKeyRecord) {
  const { name, value, action } = keyDnsAction(key);
  return {
    selector: key.selector,
    algorithm: key.algorithm,
    state: key.state,
    autoActivate: key.autoActivate,
    created: isoTime(key.createdAt),
    published: key.publishedAt === null ? null : isoTime(key.publishedAt),
    activated: key.activatedAt === null ? null : isoTime(key.activatedAt),
    retireAt: key.retireAt === null ? null : isoTime(key.retireAt),
    record: { type: 'TXT', name, value },
    action,
  };
}

export function printKeys(keys: DkimKeyRecord[]): void {
  printTable(
    ['SELECTOR', 'ALGORITHM', 'STATE', 'CREATED', 'DNS'],
    keys.map((k) => [k.selector, k.algorithm, keyStateLabel(k), formatTime(k.createdAt), keyDnsAction(k).action]),
    'No DKIM keys.',
  );
}

export function registerDomainKeyCommands(domain: Command, cli: Cli): void {
  domain
    .command('rotate-key <domain>')
    .description('create the next DKIM key under a new selector and print its record; it signs once published and activated')
    .addOption(new Option('--algorithm <algorithm>', 'key type (default: as the current keys)').choices(['rsa', 'ed25519', 'both']))
    .option('--auto', 'activate the new key as soon as its record is found published')
    .option('--json', 'print JSON')
    .action((input: string, opts: { algorithm?: KeyAlgorithmChoice; auto?: boolean; json?: boolean }) =>
      cli.withStorage(async (storage, _config, audit) => {
        const name = await requireKnownDomain(storage, input);
        const choice = opts.algorithm ?? currentChoice(await storage.dkimKeys.list(name));
        const created = await refusalsAsCliErrors(() =>
          rotateKey(storage.dkimKeys, name, choice, { auto: opts.auto ?? false, now: Date.now() }),
        );
        await audit.record({
          actor: cli.actor(),
          action: 'domain.rotate-key',
          target: name,
          change: { keys: created.map((k) => ({ selector: k.selector, algorithm: k.algorithm })), auto: opts.auto ?? false },
        });
        if (opts.json) return printJson({ domain: name, keys: created.map(keyJson) });
        print(`New DKIM key for ${name} (${created.map((k) => `selector ${k.selector}, ${k.algorithm}`).join('; ')}).`);
        print(
          created.length > 1
            ? 'Publish these records beside the current ones (do not replace them):'
            : 'Publish this record beside the current one (do not replace it):',
        );
        for (const key of created) {
          const { name: recordName, value } = keyDnsAction(key);
          print();
          print(`    Type:  TXT`);
          print(`    Name:  ${recordName}`);
          print(`    Value: ${value}`);
        }
        print();
        print(
          opts.auto
            ? `It signs as soon as it is found published (\`relay domain verify ${name}\`, or the running relay's next check).`
            : `Then run \`relay domain verify ${name}\` and \`relay domain activate-key ${name}\`.`,
        );
      }),
    );

  domain
    .command('activate-key <domain>')
    .description('sign with the new DKIM key, once its record is found published; the old key retires after signing.retire_after')
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config: RelayConfig, audit) => {
        const name = await requireKnownDomain(storage, input);
        const now = Date.now();
        await refusalsAsCliErrors(() =>
          activateKeys(storage.dkimKeys, createResolver(config), name, { now, retireAfter: config.signing.retire_after }),
        );
        const keys = await storage.dkimKeys.list(name);
        const active = keys.filter((k) => k.state === 'active').map((k) => k.selector);
        await audit.record({ actor: cli.actor(), action: 'domain.activate-key', target: name, change: { active } });
        if (opts.json) return printJson({ domain: name, keys: keys.map(keyJson) });
        print(`${name} now signs with ${active.join(' and ')} (a running relay within seconds).`);
        print();
        printKeys(keys);
      }),
    );

  domain
    .command('keys <domain>')
    .description("list the domain's DKIM keys, their state and the DNS action each needs")
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const name = await requireKnownDomain(storage, input);
        const keys = await storage.dkimKeys.list(name);
        if (opts.json) return printJson({ domain: name, keys: keys.map(keyJson) });
        printKeys(keys);
      }),
    );
}
