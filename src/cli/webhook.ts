/** `relay webhook ...`: endpoints that receive signed JSON events (delivered, deferred, bounced, expired, suppressed). */
import type { Command } from 'commander';
import { WEBHOOK_STATUSES } from '../queue/storage.js';
import { addWebhook, displayUrl, findWebhook, removeWebhook } from '../webhooks/manage.js';
import { postWebhook } from '../webhooks/post.js';
import { CliError, type Cli } from './context.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

export function registerWebhookCommands(program: Command, cli: Cli): void {
  const webhook = program.command('webhook').description('webhook endpoints for delivery events, signed with HMAC-SHA256');

  webhook
    .command('add <url>')
    .description('send events to URL; prints the signing secret once')
    .option('--events <list>', `comma-separated: ${WEBHOOK_STATUSES.join(',')}`, WEBHOOK_STATUSES.join(','))
    .option('--json', 'print JSON')
    .action((input: string, opts: { events: string; json?: boolean }) =>
      cli.withStorage(async (storage, _config, audit) => {
        const added = await addWebhook(storage.webhooks, { url: input, events: opts.events.split(',') });
        await audit.record({
          actor: cli.actor(),
          action: 'webhook.add',
          target: String(added.id),
          change: { url: displayUrl(added.url), events: added.events },
        });
        if (opts.json) return printJson({ id: added.id, url: displayUrl(added.url), events: added.events, secret: added.secret });
        print(`Added webhook ${added.id}: ${displayUrl(added.url)} (${added.events.join(', ')}).`);
        print(`  Signing secret: ${added.secret}`);
        print('Verify the Relay-Signature header (t=TIMESTAMP,v1=HMAC-SHA256 of "TIMESTAMP.BODY") with it; it will not be shown again.');
      }),
    );

  webhook
    .command('list')
    .description('list webhooks (secrets and passwords in URLs are not shown)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const webhooks = (await storage.webhooks.list()).map((w) => ({
          id: w.id,
          url: displayUrl(w.url),
          events: w.events,
          created: isoTime(w.createdAt),
        }));
        if (opts.json) return printJson(webhooks);
        printTable(
          ['ID', 'URL', 'EVENTS', 'CREATED'],
          webhooks.map((w) => [w.id, w.url, w.events.join(','), formatTime(w.created)]),
          'No webhooks yet: add one with `relay webhook add URL --events bounced,delivered`.',
        );
        const backlog = await storage.webhooks.backlog();
        if (backlog.count) print(`\n${backlog.count} event deliveries waiting, oldest from ${formatTime(backlog.oldestAt)}.`);
      }),
    );

  webhook
    .command('test <id>')
    .description('send a signed test event to the webhook now; exit 0 when it answers 2xx')
    .action((id: string) =>
      cli.withStorage(async (storage, config) => {
        const target = await findWebhook(storage.webhooks, id);
        const body = JSON.stringify({ id: 0, type: 'test', at: new Date().toISOString(), message: 'test event from relay webhook test' });
        const result = await postWebhook(target.url, target.secret, body, config.webhooks.timeout);
        if (!result.ok) throw new CliError(`webhook ${id} (${displayUrl(target.url)}) failed: ${result.error}`);
        print(`Webhook ${id} answered HTTP ${result.status}.`);
      }),
    );

  webhook
    .command('remove <id>')
    .description('stop sending events to the webhook (its undelivered events are dropped)')
    .action((id: string) =>
      cli.withStorage(async (storage, _config, audit) => {
        const target = await findWebhook(storage.webhooks, id);
        await removeWebhook(storage.webhooks, id);
        await audit.record({
          actor: cli.actor(),
          action: 'webhook.remove',
          target: String(target.id),
          change: { url: displayUrl(target.url) },
        });
        print(`Removed webhook ${id}.`);
      }),
    );
}
