/**
 * Secrets at rest: with a key configured, DKIM private keys and webhook secrets are sealed as
 * they are stored and opened as they are read, so every stage sees them in clear and the
 * database alone holds nothing usable. Opening storage checks that every sealed secret opens
 * with the configured key, so a relay (or a CLI command) without the right key stops at once
 * with a message naming the setting rather than failing later at the first message to sign.
 */
import type { Logger } from '../log.js';
import type { DkimKeyRecord, DkimKeyStore, DomainStore, Storage, StoredSecret, WebhookStore } from '../queue/storage.js';
import { isSealed, sealedKeyId, type SecretCipher } from './cipher.js';
import { KEY_ENV, SecretsKeyError } from './key.js';

/**
 * The secrets people count: a domain row's key mirrors the domain's first active key in the keys
 * table (kept for older nodes), so only the keys table's copy is counted.
 */
export const countedSecrets = (stored: StoredSecret[]) => stored.filter((s) => s.kind === 'webhook' || s.id.includes('/'));

export async function withSecretsAtRest(
  storage: Storage,
  cipher: SecretCipher | undefined,
  source: string,
  logger?: Logger,
): Promise<Storage> {
  const stored = await storage.secrets.list();
  const sealed = stored.filter((s) => isSealed(s.value));
  if (!cipher) {
    if (sealed.length === 0) return storage;
    throw new SecretsKeyError(
      `the database holds ${countedSecrets(sealed).length} encrypted DKIM keys or webhook secrets: set secrets.key_file in ${source} or ${KEY_ENV} to the key they were encrypted with`,
    );
  }
  const foreign = sealed.find((s) => sealedKeyId(s.value) !== cipher.id);
  if (foreign) {
    throw new SecretsKeyError(
      `the ${foreign.kind === 'dkim' ? `DKIM key of ${foreign.id}` : `secret of webhook ${foreign.id}`} is encrypted under key ${sealedKeyId(foreign.value)}, but secrets.key_file or ${KEY_ENV} gives key ${cipher.id}`,
    );
  }
  const plain = countedSecrets(stored).length - countedSecrets(sealed).length;
  if (plain > 0) {
    logger?.warn(
      { plain },
      'some DKIM keys or webhook secrets are stored in plain text: encrypt them with `relay secrets rekey --new-key-file FILE`',
    );
  }
  return {
    ...storage,
    domains: sealedDomains(storage.domains, cipher),
    dkimKeys: sealedDkimKeys(storage.dkimKeys, cipher),
    webhooks: sealedWebhooks(storage.webhooks, cipher),
  };
}

function sealedDomains(domains: DomainStore, cipher: SecretCipher): DomainStore {
  const open = <T extends { privateKeyPem: string }>(d: T): T => ({ ...d, privateKeyPem: cipher.open(d.privateKeyPem, 'dkim') });
  return {
    add: (domain) => domains.add({ ...domain, privateKeyPem: cipher.seal(domain.privateKeyPem, 'dkim') }),
    get: async (name) => {
      const found = await domains.get(name);
      return found && open(found);
    },
    list: async () => (await domains.list()).map(open),
    setVerification: (name, verified, checks) => domains.setVerification(name, verified, checks),
    remove: (name) => domains.remove(name),
  };
}

/** The keys table holds the same sealed values as the domains table (activation copies them across). */
function sealedDkimKeys(keys: DkimKeyStore, cipher: SecretCipher): DkimKeyStore {
  const open = (k: DkimKeyRecord): DkimKeyRecord => ({ ...k, privateKeyPem: k.privateKeyPem && cipher.open(k.privateKeyPem, 'dkim') });
  return {
    add: (added, at) =>
      keys.add(
        added.map((k) => ({ ...k, privateKeyPem: cipher.seal(k.privateKeyPem, 'dkim') })),
        at,
      ),
    list: async (domain) => (await keys.list(domain)).map(open),
    active: async (domain) => (await keys.active(domain)).map(open),
    pendingAuto: async () => (await keys.pendingAuto()).map(open),
    setPublished: (domain, selector, at) => keys.setPublished(domain, selector, at),
    activatePending: (domain, at, retireAt) => keys.activatePending(domain, at, retireAt),
    retireDue: async (now) => (await keys.retireDue(now)).map(open),
    forget: (domain, selector) => keys.forget(domain, selector),
  };
}

function sealedWebhooks(webhooks: WebhookStore, cipher: SecretCipher): WebhookStore {
  const open = <T extends { secret: string }>(w: T): T => ({ ...w, secret: cipher.open(w.secret, 'webhook') });
  return {
    add: async (url, secret, events) => ({ ...(await webhooks.add(url, cipher.seal(secret, 'webhook'), events)), secret }),
    list: async () => (await webhooks.list()).map(open),
    remove: (id) => webhooks.remove(id),
    claimDue: async (now, limit, lease) => (await webhooks.claimDue(now, limit, lease)).map(open),
    delivered: (id) => webhooks.delivered(id),
    failed: (id, error, next) => webhooks.failed(id, error, next),
    backlog: () => webhooks.backlog(),
  };
}
