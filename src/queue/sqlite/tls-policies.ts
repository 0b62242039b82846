/** MTA-STS policies and TLS-RPT counts in SQLite. */
import type { StsPolicyRecord, TlsPolicyStore, TlsResultCount } from '../storage.js';
import type { SqliteConnection } from './connection.js';

interface StsRow {
  domain: string;
  id: string;
  mode: StsPolicyRecord['mode'];
  mx: string;
  max_age: number;
  fetched_at: number;
  expires_at: number;
}

interface CountRow {
  day: string;
  policy_domain: string;
  policy_type: TlsResultCount['policyType'];
  policy_string: string;
  mx_host: string;
  result_type: string;
  count: number;
}

export class SqliteTlsPolicies implements TlsPolicyStore {
  constructor(private readonly conn: SqliteConnection) {}

  async stsPolicy(domain: string): Promise<StsPolicyRecord | undefined> {
    const row = this.conn.db.prepare(`SELECT * FROM sts_policies WHERE domain = ?`).get(domain.toLowerCase()) as StsRow | undefined;
    return row && toPolicy(row);
  }

  saveStsPolicy(p: StsPolicyRecord): Promise<void> {
    return this.conn.lazyWrite(() => {
      this.conn.db
        .prepare(
          `INSERT INTO sts_policies (domain, id, mode, mx, max_age, fetched_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (domain) DO UPDATE SET id = excluded.id, mode = excluded.mode, mx = excluded.mx, max_age = excluded.max_age,
             fetched_at = excluded.fetched_at, expires_at = excluded.expires_at`,
        )
        .run(p.domain.toLowerCase(), p.id, p.mode, JSON.stringify(p.mx), p.maxAge, p.fetchedAt, p.expiresAt);
    });
  }

  countTlsResults(counts: TlsResultCount[]): Promise<void> {
    if (counts.length === 0) return Promise.resolve();
    return this.conn.lazyWrite(() => {
      const add = this.conn.db.prepare(
        `INSERT INTO tls_results (day, policy_domain, policy_type, policy_string, mx_host, result_type, count) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (day, policy_domain, policy_type, policy_string, mx_host, result_type) DO UPDATE SET count = count + excluded.count`,
      );
      for (const c of counts) {
        add.run(c.day, c.policyDomain.toLowerCase(), c.policyType, JSON.stringify(c.policyString), c.mxHost, c.resultType, c.count);
      }
    });
  }

  takeTlsResults(beforeDay: string): Promise<TlsResultCount[]> {
    return this.conn.lazyWrite(() => {
      const rows = this.conn.db.prepare(`SELECT * FROM tls_results WHERE day < ? ORDER BY day, policy_domain`).all(beforeDay) as CountRow[];
      this.conn.db.prepare(`DELETE FROM tls_results WHERE day < ?`).run(beforeDay);
      return rows.map(toCount);
    });
  }
}

const toPolicy = (r: StsRow): StsPolicyRecord => ({
  domain: r.domain,
  id: r.id,
  mode: r.mode,
  mx: JSON.parse(r.mx) as string[],
  maxAge: r.max_age,
  fetchedAt: r.fetched_at,
  expiresAt: r.expires_at,
});

const toCount = (r: CountRow): TlsResultCount => ({
  day: r.day,
  policyDomain: r.policy_domain,
  policyType: r.policy_type,
  policyString: JSON.parse(r.policy_string) as string[],
  mxHost: r.mx_host,
  resultType: r.result_type,
  count: r.count,
});
