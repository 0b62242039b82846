/** The `database` setting: a postgres:// or postgresql:// URL is PostgreSQL, anything else a SQLite file path. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}
