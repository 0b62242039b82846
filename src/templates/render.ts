/**
 * Template rendering with Mustache (logic-less). The HTML part escapes every {{variable}}; the
 * subject and text parts do not, since they are not HTML. Before rendering, every name the
 * template uses is looked up, so a missing variable is an error that names it instead of a
 * silently empty hole in a customer's mail.
 */
import Mustache from 'mustache';
import type { TemplateRecord } from '../queue/storage.js';

export type Variables = Record<string, unknown>;

export class MissingVariableError extends Error {
  constructor(
    readonly variable: string,
    part: string,
  ) {
    super(`template variable "${variable}" (used in the ${part}) was not given`);
  }
}

export interface RenderedTemplate {
  subject: string;
  text?: string;
  html?: string;
}

const noEscape = (value: string) => value;

export function renderTemplate(template: TemplateRecord, variables: Variables): RenderedTemplate {
  const parts = { subject: template.subject, text: template.text, html: template.html };
  for (const [part, source] of Object.entries(parts)) if (source != null) checkVariables(source, variables, part);
  return {
    subject: Mustache.render(template.subject, variables, {}, { escape: noEscape }).replace(/[\r\n]+/g, ' '),
    ...(template.text != null && { text: Mustache.render(template.text, variables, {}, { escape: noEscape }) }),
    ...(template.html != null && { html: Mustache.render(template.html, variables) }),
  };
}

/** Throws a MissingVariableError for the first name that resolves to nothing in its context. */
function checkVariables(source: string, variables: Variables, part: string): void {
  const walk = (tokens: Mustache.TemplateSpans, context: Mustache.Context) => {
    for (const token of tokens) {
      const [type, name] = token;
      if (!['name', '&', '{', '#', '^'].includes(type)) continue;
      const value = context.lookup(name);
      if (value === undefined) throw new MissingVariableError(name, part);
      const children = token[4] as Mustache.TemplateSpans | undefined;
      if (!children) continue;
      // A section renders once per item (arrays), with the value pushed (objects), or not at all.
      if (type === '^') walk(children, context);
      else if (Array.isArray(value)) for (const item of value) walk(children, context.push(item));
      else if (value) walk(children, typeof value === 'object' ? context.push(value) : context);
    }
  };
  walk(Mustache.parse(source), new Mustache.Context(variables));
}
