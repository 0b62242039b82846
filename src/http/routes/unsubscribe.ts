/**
 * One-click unsubscribe (RFC 8058) at http.public_url + /u/TOKEN. POST with the body
 * `List-Unsubscribe=One-Click` (form-urlencoded or multipart, as mail clients send it) records
 * the unsubscribe; GET only shows a page with a button that makes that POST, because link
 * scanners and previews follow GETs. The token is signed, so nothing here needs a login.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';

const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data'];

export function registerUnsubscribeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const feedback = ctx.feedback;
  if (!feedback) return;
  const read = (token: string) => feedback.tokens.readUnsubscribe(token);

  void app.register(async (scoped) => {
    // Only these routes read form bodies; the API keeps answering 415 to them.
    scoped.addContentTypeParser(FORM_TYPES, { parseAs: 'string', bodyLimit: 8192 }, (_request, body, done) => done(null, body));

    scoped.get<{ Params: { token: string } }>(
      '/u/:token',
      { config: { role: 'public' }, schema: { hide: true } },
      async (request, reply) => {
        const token = read(request.params.token);
        reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('x-robots-tag', 'noindex');
        if (!token) return reply.code(404).send(page('Unknown link', '<p>This unsubscribe link is not valid.</p>'));
        return reply.send(
          page(
            'Unsubscribe',
            `<p>Stop sending mail to <strong>${escapeHtml(token.address)}</strong>?</p>
<form method="post" action="/u/${escapeHtml(request.params.token)}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>`,
          ),
        );
      },
    );

    scoped.post<{ Params: { token: string }; Body: unknown }>(
      '/u/:token',
      { config: { role: 'public' }, schema: { hide: true } },
      async (request, reply) => {
        const token = read(request.params.token);
        reply.type('text/html; charset=utf-8').header('cache-control', 'no-store');
        if (!token) return reply.code(404).send(page('Unknown link', '<p>This unsubscribe link is not valid.</p>'));
        if (!isOneClick(request.body)) {
          return reply.code(400).send(page('Unsubscribe', '<p>Expected the form field List-Unsubscribe=One-Click.</p>'));
        }
        await feedback.processor.unsubscribe(token, 'one-click');
        return reply.send(page('Unsubscribed', `<p><strong>${escapeHtml(token.address)}</strong> will get no more of this mail.</p>`));
      },
    );
  });
}

/** `List-Unsubscribe=One-Click` as a form-urlencoded body, or as a multipart field. */
function isOneClick(body: unknown): boolean {
  if (typeof body !== 'string') return false;
  if (new URLSearchParams(body).get('List-Unsubscribe') === 'One-Click') return true;
  return /name="?List-Unsubscribe"?\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n/i.test(body);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto">
<h1>${title}</h1>
${body}
</body></html>
`;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
