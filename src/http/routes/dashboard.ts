/**
 * The dashboard: one static page and its script (public/), no build step. The page holds no
 * data; it fetches everything from the API with the admin token, which the operator types in
 * or passes in the URL fragment (#token=..., never sent to the server or its logs).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const PUBLIC = new URL('../../../public/', import.meta.url);
const FILES = {
  '/dashboard': { file: 'dashboard.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/app.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/dashboard/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** Same-origin everything, and never inside another site's frame (clickjacking). */
const CSP = "default-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function registerDashboardRoutes(app: FastifyInstance): void {
  for (const [route, { file, type }] of Object.entries(FILES)) {
    const content = readFileSync(new URL(file, PUBLIC));
    app.get(route, { config: { role: 'public' }, schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('content-security-policy', CSP)
        .header('x-frame-options', 'DENY')
        .send(content),
    );
  }
  // Browsers ask for it on any page they show (the OpenAPI document, an error); nothing to see.
  app.get('/favicon.ico', { config: { role: 'public' }, schema: { hide: true } }, async (_request, reply) => reply.code(204).send());
}
