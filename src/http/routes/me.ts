/** `GET /v1/me`: who the token is and what it may do, so a console (the dashboard) shows only that. */
import type { FastifyInstance } from 'fastify';
import { grantsOf } from '../../operators/roles.js';

export function registerMeRoute(app: FastifyInstance): void {
  app.get(
    '/v1/me',
    {
      config: { role: 'viewer', apps: true },
      schema: {
        summary: "The token's operator (or app) and its role",
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string', description: 'The operator, admin-token for http.admin_token, or the app key’s credential' },
              role: { type: 'string', enum: ['admin', 'sender-admin', 'template-editor', 'viewer', 'app'] },
              grants: { type: 'array', items: { type: 'string' }, description: 'The roles whose routes it may call' },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async (request) => {
      const { name, role } = request.principal!;
      return { name, role, grants: role === 'app' ? ['app'] : grantsOf(role) };
    },
  );
}
