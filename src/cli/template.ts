/** `relay template ...`: message templates (Mustache) for the HTTP API; each add makes a new version. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { removeTemplate, saveTemplate } from '../templates/manage.js';
import { CliError, type Cli } from './context.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

function readPart(file: string | undefined, what: string): string | null {
  if (file === undefined) return null;
  try {
    return readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function registerTemplateCommands(program: Command, cli: Cli): void {
  const template = program
    .command('template')
    .description('message templates for the HTTP API (Mustache: {{name}}, HTML escaped in the html part)');

  template
    .command('add <name>')
    .description('add a template, or a new version of an existing one')
    .requiredOption('--subject <text>', 'subject line (may use {{variables}})')
    .option('--text-file <file>', 'plain text part')
    .option('--html-file <file>', 'HTML part')
    .option('--json', 'print JSON')
    .action((name: string, opts: { subject: string; textFile?: string; htmlFile?: string; json?: boolean }) =>
      cli.withStorage(async (storage, _config, audit) => {
        const text = readPart(opts.textFile, 'text');
        const html = readPart(opts.htmlFile, 'HTML');
        if (text === null && html === null) throw new CliError('give --text-file, --html-file or both');
        const version = await saveTemplate(storage.templates, { name, subject: opts.subject, text, html });
        await audit.record({
          actor: cli.actor(),
          action: 'template.add',
          target: name,
          change: { version, subject: opts.subject, parts: [text !== null && 'text', html !== null && 'html'].filter(Boolean) },
        });
        if (opts.json) return printJson({ name, version });
        print(`Added template ${name} version ${version}.`);
      }),
    );

  template
    .command('list')
    .description('list templates (latest version of each)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const templates = (await storage.templates.list()).map((t) => ({
          name: t.name,
          version: t.version,
          subject: t.subject,
          parts: [t.text !== null && 'text', t.html !== null && 'html'].filter(Boolean) as string[],
          created: isoTime(t.createdAt),
        }));
        if (opts.json) return printJson(templates);
        printTable(
          ['NAME', 'VERSION', 'PARTS', 'CREATED', 'SUBJECT'],
          templates.map((t) => [t.name, t.version, t.parts.join('+'), formatTime(t.created), t.subject]),
          'No templates yet: add one with `relay template add NAME --subject S --text-file F`.',
        );
      }),
    );

  template
    .command('remove <name>')
    .description('remove a template and all its versions; API sends that name it fail from then on')
    .action((name: string) =>
      cli.withStorage(async (storage) => {
        await removeTemplate(storage.templates, name);
        print(`Removed template ${name}.`);
      }),
    );
}
