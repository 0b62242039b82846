/** Adding, rotating and revoking operators; the CLI is the only door that does this. */
import { ManagementError } from '../management/error.js';
import { operatorName } from '../management/names.js';
import type { OperatorStore } from '../queue/storage.js';
import { isRole, ROLES, type Role } from './roles.js';
import { newOperatorToken } from './tokens.js';

/** The name requests with http.admin_token act under, so no operator may take it. */
export const ADMIN_TOKEN_OPERATOR = 'admin-token';

export interface IssuedOperator {
  name: string;
  role: Role;
  /** Shown once; only its hash is stored. */
  token: string;
}

export function operatorRole(input: string): Role {
  if (!isRole(input)) throw new ManagementError('invalid', 'role', `unknown role ${input}: choose from ${ROLES.join(', ')}`);
  return input;
}

export async function addOperator(store: OperatorStore, input: { name: string; role: string }, now = Date.now()): Promise<IssuedOperator> {
  const name = operatorName(input.name);
  const role = operatorRole(input.role);
  if (name === ADMIN_TOKEN_OPERATOR)
    throw new ManagementError('invalid', 'name', `${name} names the admin token (http.admin_token); choose another name`);
  const issued = newOperatorToken();
  if (!(await store.add({ name, role, tokenId: issued.tokenId, tokenHash: issued.tokenHash }, now))) {
    throw new ManagementError('exists', 'name', `operator ${name} already exists (names of revoked operators stay taken)`);
  }
  return { name, role, token: issued.token };
}

/** A new token for the operator; the old one stops working at once. */
export async function rotateOperator(store: OperatorStore, name: string, now = Date.now()): Promise<IssuedOperator> {
  const operator = await activeOperator(store, name);
  const issued = newOperatorToken();
  if (!(await store.replaceToken(name, issued, now)))
    throw new ManagementError('unknown', 'name', `operator ${name} was revoked meanwhile`);
  return { name, role: operator.role, token: issued.token };
}

export async function revokeOperator(store: OperatorStore, name: string, now = Date.now()): Promise<void> {
  await activeOperator(store, name);
  if (!(await store.revoke(name, now))) throw new ManagementError('unknown', 'name', `operator ${name} was revoked meanwhile`);
}

async function activeOperator(store: OperatorStore, name: string) {
  const operator = await store.get(name);
  if (!operator) throw new ManagementError('unknown', 'name', `unknown operator ${name}`);
  if (operator.revokedAt !== null) {
    throw new ManagementError('unknown', 'name', `operator ${name} was revoked at ${new Date(operator.revokedAt).toISOString()}`);
  }
  return operator;
}
