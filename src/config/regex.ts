/** A rule file's regular expression: the source text, compiled case-insensitively, or a zod issue naming the error. */
import { z } from 'zod';

export const regexSource = z
  .string()
  .min(1)
  .transform((source, ctx) => {
    try {
      return new RegExp(source, 'i');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(err as Error).message}` });
      return z.NEVER;
    }
  });
