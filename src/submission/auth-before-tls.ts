/**
 * No AUTH in the EHLO reply before TLS. smtp-server refuses AUTH on a STARTTLS listener until
 * the upgrade, but still lists it in EHLO, and common clients then send the password in clear
 * before learning it is refused. There is no option for this (hideSTARTTLS hides STARTTLS,
 * authOptional and allowInsecureAuth weaken AUTH, a per-session disabledCommands AUTH would
 * also drop the "530 authentication required" for MAIL), so the AUTH line is taken out of the
 * EHLO reply of a connection that is not yet secure. After STARTTLS, EHLO lists it as before.
 */
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

let patched = false;

export function hideAuthBeforeTls(): void {
  if (patched) return;
  patched = true;
  const ehlo = SMTPConnection.prototype.handler_EHLO;
  SMTPConnection.prototype.handler_EHLO = function (command, callback) {
    if (this.secure || this._server.options.allowInsecureAuth) return ehlo.call(this, command, callback);
    // handler_EHLO sends its reply synchronously, so the filter is in place for exactly that reply.
    const send = this.send;
    this.send = (code, data, context) =>
      send.call(this, code, code === 250 && Array.isArray(data) ? data.filter((line) => !/^AUTH\b/i.test(line)) : data, context);
    try {
      ehlo.call(this, command, callback);
    } finally {
      delete (this as { send?: unknown }).send;
    }
  };
}
