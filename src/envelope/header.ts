/**
 * The header block of a CRLF message (RFC 5322): where it ends, its fields, adding one. The one
 * home for what submission, signing, bounces and the HTTP API ask of a message's header.
 */

/** The blank line that ends the header block: the CRLF ending the last field, then an empty line. */
export const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * A message kept in the pieces it arrived in, so that the body is joined once, when it is
 * signed for storage: `head` is the header block with the blank line after it, `rest` the body.
 * A message with no blank line is all head.
 */
export interface MessageParts {
  head: Buffer;
  rest: Buffer[];
}

/** A CRLF message in chunks as MessageParts; only the header block is copied (when it spans chunks). */
export function splitHead(chunks: Buffer[]): MessageParts {
  const seamLength = HEADER_END.length - 1;
  // The last bytes of the chunks before chunks[i], for a blank line split between two chunks.
  let last: Buffer = Buffer.alloc(0);
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    const inSeam = Buffer.concat([last, chunk.subarray(0, seamLength)]).indexOf(HEADER_END);
    // Where the blank line starts in this chunk: negative when it started in the chunk before.
    const at = inSeam >= 0 ? inSeam - last.length : chunk.indexOf(HEADER_END);
    if (inSeam >= 0 || at >= 0) {
      const end = at + HEADER_END.length;
      const rest = [chunk.subarray(end), ...chunks.slice(i + 1)].filter((piece) => piece.length > 0);
      return { head: i === 0 ? chunk.subarray(0, end) : Buffer.concat([...chunks.slice(0, i), chunk.subarray(0, end)]), rest };
    }
    last = (chunk.length >= seamLength ? chunk : Buffer.concat([last, chunk])).subarray(-seamLength);
  }
  return { head: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), rest: [] };
}

/** A whole message (a DSN, a report) as MessageParts: its header block and its body. */
export function partsOf(message: Buffer): MessageParts {
  return splitHead([message]);
}

/** The message's length in bytes. */
export function partsSize({ head, rest }: MessageParts): number {
  return rest.reduce((size, chunk) => size + chunk.length, head.length);
}

/**
 * The message as one Buffer: a copy, unless it is all head or its parts lie side by side in one
 * Buffer (a body read back whole from storage and split there), which is then returned as it is.
 */
export function joinParts({ head, rest }: MessageParts): Buffer {
  if (rest.length === 0) return head;
  const [body] = rest;
  if (rest.length === 1 && body!.buffer === head.buffer && body!.byteOffset === head.byteOffset + head.length) {
    return Buffer.from(head.buffer, head.byteOffset, head.length + body!.length);
  }
  return Buffer.concat([head, ...rest]);
}

/** Where the header block's closing CRLF CRLF starts, or -1 when the message has no blank line. */
export function blankLineAt(message: Buffer): number {
  return message.indexOf(HEADER_END);
}

/**
 * Where the header block ends: just past the last field's CRLF, so the blank line (and then the
 * body) starts there. A message with no blank line is all header; one that starts with a blank
 * line has no header at all, whatever field-like lines its body begins with.
 */
export function headerEndOf(message: Buffer): number {
  if (message[0] === 0x0d && message[1] === 0x0a) return 0;
  const blank = blankLineAt(message);
  return blank === -1 ? message.length : blank + 2;
}

/** The header block as text, without the blank line and the CRLF before it (all of a message with no blank line). */
export function headerText(message: Buffer): string {
  const blank = blankLineAt(message);
  return message.toString('utf8', 0, blank === -1 ? message.length : blank);
}

export interface HeaderField {
  /** Lower-cased field name. */
  name: string;
  value: string;
}

/** The header fields (unfolded) and where the header block ends (headerEndOf). */
export function readHeader(message: Buffer): { fields: HeaderField[]; headerEnd: number } {
  const headerEnd = headerEndOf(message);
  const fields: HeaderField[] = [];
  for (const line of message.toString('utf8', 0, headerEnd).split('\r\n')) {
    if (line === '') continue;
    // A folded line continues the field before it. One at the very top continues nothing here, but
    // once Relay's own fields go on top it continues the last of them, so it is never a field.
    if (line[0] === ' ' || line[0] === '\t') {
      if (fields.length) fields[fields.length - 1]!.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return { fields, headerEnd };
}

/** The message with `field` (a whole `Name: value` line, folded or not, without its final CRLF) added at the top of its header. */
export function prependHeaderField(message: Buffer, field: string): Buffer {
  return Buffer.concat([Buffer.from(`${field}\r\n`), message]);
}

/**
 * Removes every field named `name` (lower-case), with its folded lines, from the header of a CRLF
 * message; returns the message without them and their values (unfolded), in order.
 */
export function takeHeaderFields(message: Buffer, name: string): { message: Buffer; values: string[] } {
  const headerEnd = headerEndOf(message);
  const kept: Buffer[] = [];
  const values: string[] = [];
  let dropping = false;
  for (let start = 0; start < headerEnd;) {
    const lf = message.indexOf(0x0a, start);
    const end = lf === -1 || lf >= headerEnd ? headerEnd : lf + 1;
    const line = message.subarray(start, end);
    const text = line.toString('utf8').replace(/[\r\n]+$/, '');
    if (text[0] === ' ' || text[0] === '\t') {
      if (dropping) values[values.length - 1] += ` ${text.trim()}`;
    } else {
      const colon = text.indexOf(':');
      dropping = colon > 0 && text.slice(0, colon).trim().toLowerCase() === name;
      if (dropping) values.push(text.slice(colon + 1).trim());
    }
    if (!dropping) kept.push(line);
    start = end;
  }
  if (values.length === 0) return { message, values };
  kept.push(message.subarray(headerEnd));
  return { message: Buffer.concat(kept), values: values.map((v) => v.trim()) };
}
