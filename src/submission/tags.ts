/**
 * Message tags: short tokens a submitter attaches (the X-Relay-Tag header, comma-separated or
 * repeated, or `tags` on the HTTP API) to break events and stats down by campaign or kind of
 * mail. The header is Relay's own and is removed before signing, so it never leaves. A bad tag
 * is refused with 550 5.5.4 (400 on the API) rather than dropped, so the sender learns of it.
 */
import { takeHeaderFields } from '../envelope/header.js';
import { reply, type SmtpReply } from './replies.js';

export const TAG_HEADER = 'X-Relay-Tag';
export const MAX_TAGS = 5;
const MAX_TAG_LENGTH = 40;
const TAG = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,${MAX_TAG_LENGTH - 1}}$`);

const refuse = (text: string) => reply(550, '5.5.4', text, 'tags');

/** Undefined when every tag is a short token and there are at most MAX_TAGS distinct ones. */
export function checkTags(tags: string[]): SmtpReply | undefined {
  for (const tag of tags) {
    if (!TAG.test(tag)) {
      return refuse(
        `${TAG_HEADER} ${JSON.stringify(tag.slice(0, 60))} is not a tag: 1 to ${MAX_TAG_LENGTH} letters, digits and . _ : - (starting with a letter or digit)`,
      );
    }
  }
  const distinct = new Set(tags).size;
  if (distinct > MAX_TAGS) return refuse(`at most ${MAX_TAGS} tags per message, not ${distinct}`);
  return undefined;
}

/** The message without its X-Relay-Tag fields, and their tags in order without repeats; throws the refusal for a bad one. */
export function takeTags(message: Buffer): { message: Buffer; tags: string[] } {
  const taken = takeHeaderFields(message, TAG_HEADER.toLowerCase());
  const tags = taken.values.flatMap((value) => value.split(',').map((t) => t.trim()));
  const refusal = checkTags(tags);
  if (refusal) throw refusal;
  return { message: taken.message, tags: [...new Set(tags)] };
}
