/** Adding (a new version of) and removing message templates, for the CLI and the HTTP API alike. */
import Mustache from 'mustache';
import { ManagementError } from '../management/error.js';
import type { TemplateStore } from '../queue/storage.js';

const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function templateName(name: string): string {
  if (!TEMPLATE_NAME.test(name))
    throw new ManagementError('invalid', 'name', `"${name}" is not a valid template name (letters, digits and . _ -)`);
  return name;
}

/** Stores the next version of the template after checking that each part parses; returns the version. */
export async function saveTemplate(
  store: Pick<TemplateStore, 'add'>,
  input: { name: string; subject: string; text: string | null; html: string | null },
): Promise<number> {
  const name = templateName(input.name);
  if (input.text === null && input.html === null) throw new ManagementError('invalid', 'text', 'give a text part, an HTML part or both');
  for (const [field, part, source] of [
    ['subject', 'subject', input.subject],
    ['text', 'text', input.text],
    ['html', 'HTML', input.html],
  ] as const) {
    try {
      if (source !== null) Mustache.parse(source);
    } catch (err) {
      throw new ManagementError('invalid', field, `the ${part} is not a valid template: ${(err as Error).message}`);
    }
  }
  return store.add({ name, subject: input.subject, text: input.text, html: input.html });
}

export async function removeTemplate(store: Pick<TemplateStore, 'remove'>, name: string): Promise<void> {
  if (!(await store.remove(name))) throw new ManagementError('unknown', 'name', `unknown template ${name}`);
}
