/**
 * The structured logger (pino). Never give it passwords, AUTH payloads or message bodies; as a
 * second line of defence, fields named like secrets are censored. With `log.redact_recipients`
 * the local part of every address in a log line is masked (`***@example.com`): recipient
 * addresses reach the log mostly inside remote servers' replies, so lines are masked whole.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  redactRecipients?: boolean;
  /** Where lines go (tests capture them); standard output by default. */
  destination?: DestinationStream;
}

const SECRET_FIELDS = ['password', 'pass', 'auth', 'authorization', '*.password', '*.pass', '*.auth', '*.authorization'];

/** A local part as RFC 5322/6531 allow it unquoted, followed by @ and a domain name. */
const LOCAL_PART = /[\p{L}\p{N}!#$%&'*+/=?^_`{|}~.-]+@(?=[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+)/gu;

export function maskLocalParts(line: string): string {
  return line.replace(LOCAL_PART, '***@');
}

export function createLogger(level = 'info', options: LoggerOptions = {}): Logger {
  const out = options.destination ?? pino.destination(1);
  const destination = options.redactRecipients ? { write: (line: string) => out.write(maskLocalParts(line)) } : out;
  return pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: SECRET_FIELDS, censor: '[redacted]' } },
    destination,
  );
}
