/** `relay operator ...`: named tokens for the HTTP API and the dashboard, each with a role. */
import { Option, type Command } from 'commander';
import { addOperator, revokeOperator, rotateOperator, type IssuedOperator } from '../operators/manage.js';
import { ROLE_DUTIES, ROLES } from '../operators/roles.js';
import { type Cli } from './context.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

function printIssued(issued: IssuedOperator, json: boolean | undefined, verb: string): void {
  if (json) return printJson(issued);
  print(`${verb} operator ${issued.name} (role ${issued.role}: ${ROLE_DUTIES[issued.role]}).`);
  print(`  Token: ${issued.token}`);
  print('Store it now: it will not be shown again. Send it as "Authorization: Bearer TOKEN", or open /dashboard#token=TOKEN.');
}

export function registerOperatorCommands(program: Command, cli: Cli): void {
  const operator = program.command('operator').description('operator tokens for the HTTP API and the dashboard, each with a role');

  operator
    .command('add <name>')
    .description('create an operator and print its token, once (only a hash is stored)')
    .addOption(
      new Option('--role <role>', `what it may do: ${ROLES.map((r) => `${r} (${ROLE_DUTIES[r]})`).join('; ')}`)
        .choices(ROLES)
        .makeOptionMandatory(),
    )
    .option('--json', 'print JSON')
    .action((name: string, opts: { role: string; json?: boolean }) =>
      cli.withStorage(async (storage) =>
        printIssued(await addOperator(storage.operators, { name, role: opts.role }), opts.json, 'Created'),
      ),
    );

  operator
    .command('list')
    .description('list operators (tokens are never shown)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const operators = (await storage.operators.list()).map((o) => ({
          name: o.name,
          role: o.role,
          created: isoTime(o.createdAt),
          token_issued: isoTime(o.tokenIssuedAt),
          revoked: isoTime(o.revokedAt),
        }));
        if (opts.json) return printJson(operators);
        printTable(
          ['NAME', 'ROLE', 'CREATED', 'TOKEN ISSUED', 'REVOKED'],
          operators.map((o) => [o.name, o.role, formatTime(o.created), formatTime(o.token_issued), formatTime(o.revoked)]),
          'No operators yet: add one with `relay operator add NAME --role viewer`.',
        );
      }),
    );

  operator
    .command('rotate <name>')
    .description('issue the operator a new token, shown once; the old one stops working at once')
    .option('--json', 'print JSON')
    .action((name: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => printIssued(await rotateOperator(storage.operators, name), opts.json, 'New token for')),
    );

  operator
    .command('revoke <name>')
    .description('revoke an operator; its token fails from now on, also on a running relay (the name stays taken)')
    .action((name: string) =>
      cli.withStorage(async (storage) => {
        await revokeOperator(storage.operators, name);
        print(`Revoked operator ${name}.`);
      }),
    );
}
