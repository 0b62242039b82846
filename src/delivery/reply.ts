/**
 * Replies as delivery records them: the server's reply when there was one, otherwise a line
 * that starts with an enhanced status code (RFC 3463) so it classifies, logs and reports like
 * a reply ("4.4.1 mx.example.test[192.0.2.1]:25: connect ECONNREFUSED").
 */

export interface Reply {
  /** The SMTP reply code; absent when the server said nothing (DNS, connection, local failures). */
  code?: number;
  /** On one line. */
  text: string;
  /** The server refused our envelope sender (MAIL FROM): the reply says nothing about the recipients. */
  senderRefused?: boolean;
}

export const isSuccess = (reply: Reply): boolean => reply.code !== undefined && reply.code >= 200 && reply.code < 300;

/** The parts of a nodemailer error that matter here. */
interface SmtpError {
  code?: string;
  message?: string;
  response?: string;
  responseCode?: number;
}

/** Parses a reply line such as "250 2.0.0 Ok: queued". */
export function parseReply(text: string): Reply {
  const code = /^(\d{3})/.exec(text)?.[1];
  return { code: code ? Number(code) : undefined, text: oneLine(text) };
}

/** The server's reply carried by an error, else what went wrong with `peer` ("host[address]:port"). */
export function replyFromError(err: unknown, peer: string): Reply {
  const e = err as SmtpError;
  if (e.response && e.responseCode) return { code: e.responseCode, text: oneLine(e.response) };
  const status = e.code === 'ETIMEDOUT' ? '4.4.2' : '4.4.1';
  return { text: `${status} ${peer}: ${e.message ?? String(err)}` };
}

/** Multi-line replies ("550-5.1.1 a\n550 5.1.1 b") as one line, for storage, logs and DSNs. */
export function oneLine(reply: string): string {
  const [first = '', ...rest] = reply.split(/\r?\n/);
  const continuation = rest.map((line) => line.replace(/^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3} )?/, ''));
  return [first.replace(/^(\d{3})-/, '$1 '), ...continuation].join(' ').replace(/\s+/g, ' ').trim();
}
