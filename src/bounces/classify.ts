/**
 * Classifies failure replies into a category and decides bounce (permanent) or retry
 * (temporary), from rules kept as data (config/bounce-rules.yaml) so operators can add
 * rules for new provider replies without a release. The first matching rule wins.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { regexSource } from '../config/regex.js';

export const BOUNCE_CATEGORIES = ['bad_mailbox', 'bad_domain', 'mailbox_full', 'policy', 'rate_limited', 'content', 'other'] as const;
export type BounceCategory = (typeof BOUNCE_CATEGORIES)[number];

export interface BounceRule {
  /** Enhanced status code pattern such as "5.1.1" or "5.7.*"; "*" matches any one part. */
  status?: string;
  /** Case-insensitive regex on the reply text. */
  match?: RegExp;
  category: BounceCategory;
  /** Overrides what the reply code alone says; absent means the code decides. */
  permanent?: boolean;
}

export type BounceRules = readonly BounceRule[];

export interface Classification {
  category: BounceCategory;
  permanent: boolean;
}

const statusPattern = z
  .string()
  .regex(/^([245*])\.(\d{1,3}|\*)\.(\d{1,3}|\*)$/, 'expected an enhanced status code pattern like "5.1.1" or "5.7.*"');

const ruleSchema = z
  .strictObject({
    status: statusPattern.optional(),
    match: regexSource.optional(),
    category: z.enum(BOUNCE_CATEGORIES),
    permanent: z.boolean().optional(),
    /** Free text for the people who maintain the file. */
    note: z.string().optional(),
  })
  .refine((rule) => rule.status !== undefined || rule.match !== undefined, 'a rule needs "status", "match" or both')
  .transform(({ note: _note, ...rule }): BounceRule => rule);

const fileSchema = z.strictObject({ rules: z.array(ruleSchema) });

export class BounceRulesError extends Error {}

/** Reads and validates a rules file; errors name the file and the offending rule. */
export function loadBounceRules(file: string): BounceRules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BounceRulesError(`cannot read bounce rules ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new BounceRulesError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
  return parseBounceRules(doc.toJS(), file);
}

export function parseBounceRules(raw: unknown, source: string): BounceRules {
  const result = fileSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.length ? issue.path.join('.') : '(top level)';
      return `  ${key}: ${issue.message}`;
    });
    throw new BounceRulesError(`invalid bounce rules in ${source}:\n${lines.join('\n')}`);
  }
  return result.data.rules;
}

/**
 * The enhanced status code (RFC 3463) of a reply: the one right after the reply code,
 * else the first one in the text (some servers put it later). Never part of an IP address.
 */
export function enhancedStatusOf(text: string): string | undefined {
  const leading = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?![\d.])/.exec(text);
  if (leading) return leading[1];
  return /(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])/.exec(text)?.[1];
}

function statusMatches(pattern: string, status: string | undefined): boolean {
  if (!status) return false;
  const want = pattern.split('.');
  const have = status.split('.');
  return want.every((part, i) => part === '*' || part === have[i]);
}

/**
 * code: the SMTP reply code when there was one (undefined for connection or DNS failures);
 * text: the reply as received. Without a rule saying otherwise, 5xx is permanent and
 * everything else temporary (a reply without a code falls back to its enhanced class).
 */
export function classify(rules: BounceRules, code: number | undefined, text: string): Classification {
  const status = enhancedStatusOf(text);
  const rule = rules.find(
    (r) => (r.status === undefined || statusMatches(r.status, status)) && (r.match === undefined || r.match.test(text)),
  );
  const permanentByCode = code !== undefined ? code >= 500 && code < 600 : status?.startsWith('5.') === true;
  return { category: rule?.category ?? 'other', permanent: rule?.permanent ?? permanentByCode };
}
