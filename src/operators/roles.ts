/**
 * Operator roles, least privilege first: `viewer` reads (the read-only API and the dashboard);
 * `template-editor` also changes templates; `sender-admin` also domains, credentials and
 * suppressions; `admin` does everything (webhooks, and what the admin token does).
 */
import { OPERATOR_ROLES, type OperatorRole } from '../queue/storage.js';

export type Role = OperatorRole;
export const ROLES = OPERATOR_ROLES;

/** What each role may do, as the roles whose routes it may call. */
const GRANTS: Record<Role, readonly Role[]> = {
  admin: ROLES,
  'sender-admin': ['sender-admin', 'viewer'],
  'template-editor': ['template-editor', 'viewer'],
  viewer: ['viewer'],
};

export const ROLE_DUTIES: Record<Role, string> = {
  admin: 'everything',
  'sender-admin': 'domains, credentials and suppressions, and reading',
  'template-editor': 'templates, and reading',
  viewer: 'reading: the read-only API and the dashboard',
};

export const grantsOf = (held: Role): readonly Role[] => GRANTS[held];

/** True when an operator holding `held` may do what needs `needed`. */
export const mayActAs = (held: Role, needed: Role): boolean => GRANTS[held].includes(needed);

export const isRole = (text: string): text is Role => (ROLES as readonly string[]).includes(text);
