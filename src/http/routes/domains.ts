/**
 * Sending domains: list them with their DNS check status (viewer); add one with a new DKIM key
 * and get the DNS records to publish, check those records, remove one (sender-admin). Private
 * keys are never returned.
 */
import type { FastifyInstance } from 'fastify';
import { createResolver } from '../../delivery/resolver.js';
import { addDomain, checkDomain, removeDomain, requireDomain } from '../../domains/manage.js';
import { dnsRecords, type DnsRecord } from '../../domains/records.js';
import { isoTime } from '../../envelope/time.js';
import type { ApiContext } from '../context.js';

const errors = { '4xx': { $ref: 'ApiError#' } };
const domainParams = { type: 'object', properties: { domain: { type: 'string' } } };
const checksSchema = {
  type: ['object', 'null'],
  description:
    'Per record (verification, dkim, spf, dmarc): status found|missing|mismatched|error and a message; null before the first verify',
  additionalProperties: true,
};
const recordsSchema = {
  type: 'object',
  properties: {
    domain: { type: 'string' },
    selector: { type: 'string' },
    records: {
      type: 'array',
      items: {
        type: 'object',
        properties: { purpose: { type: 'string' }, type: { type: 'string' }, name: { type: 'string' }, value: { type: 'string' } },
      },
    },
  },
};

const recordsJson = (domain: { name: string; selector: string }, records: DnsRecord[]) => ({
  domain: domain.name,
  selector: domain.selector,
  records,
});

export function registerDomainRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { storage, config } = ctx;

  app.get(
    '/v1/domains',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Sending domains and the status of their DNS records',
        response: {
          200: {
            type: 'object',
            properties: {
              domains: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    selector: { type: 'string' },
                    algorithm: { type: 'string' },
                    verified: { type: 'boolean' },
                    verified_at: { type: ['string', 'null'] },
                    created_at: { type: 'string' },
                    checks: checksSchema,
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async () => ({
      domains: (await storage.domains.list()).map((d) => ({
        name: d.name,
        selector: d.selector,
        algorithm: d.algorithm,
        verified: d.verified,
        verified_at: isoTime(d.verifiedAt),
        created_at: isoTime(d.createdAt),
        checks: d.checks,
      })),
    }),
  );

  app.post<{ Body: { domain: string; selector?: string; algorithm?: 'rsa' | 'ed25519' | 'both' } }>(
    '/v1/domains',
    {
      config: { role: 'sender-admin', audit: 'domain.add' },
      schema: {
        summary: 'Add a sending domain with a new DKIM key; returns the DNS records to publish',
        body: {
          type: 'object',
          required: ['domain'],
          additionalProperties: false,
          properties: {
            domain: { type: 'string' },
            selector: { type: 'string', description: 'DKIM selector (default: relay + year and month, e.g. relay202611)' },
            algorithm: {
              type: 'string',
              enum: ['rsa', 'ed25519', 'both'],
              default: 'rsa',
              description: 'both: RSA and Ed25519 keys that sign together',
            },
          },
        },
        response: { 201: recordsSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { domain, records } = await addDomain(storage, config.hostname, { ...request.body, name: request.body.domain });
      return reply.code(201).send(recordsJson(domain, records));
    },
  );

  app.get<{ Params: { domain: string } }>(
    '/v1/domains/:domain/records',
    {
      config: { role: 'viewer' },
      schema: { summary: 'The DNS records to publish for a domain', params: domainParams, response: { 200: recordsSchema, ...errors } },
    },
    async (request) => {
      const domain = await requireDomain(storage.domains, request.params.domain);
      return recordsJson(domain, dnsRecords(domain, config.hostname));
    },
  );

  app.post<{ Params: { domain: string } }>(
    '/v1/domains/:domain/verify',
    {
      config: { role: 'sender-admin', audit: 'domain.verify' },
      schema: {
        summary: "Check the domain's DNS records now; sending is allowed once the ownership record is found",
        params: domainParams,
        response: {
          200: { type: 'object', properties: { domain: { type: 'string' }, verified: { type: 'boolean' }, checks: checksSchema } },
          ...errors,
        },
      },
    },
    async (request) => {
      const result = await checkDomain(storage.domains, createResolver(config), config.hostname, request.params.domain);
      return { domain: result.domain.name, verified: result.verified, checks: result.checks };
    },
  );

  app.delete<{ Params: { domain: string } }>(
    '/v1/domains/:domain',
    {
      config: { role: 'sender-admin', audit: 'domain.remove' },
      schema: {
        summary: 'Remove a domain and its DKIM key; credentials can no longer send from it',
        params: domainParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      await removeDomain(storage.domains, request.params.domain);
      return reply.code(204).send();
    },
  );
}
