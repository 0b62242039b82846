/** MTA-STS policies and TLS-RPT counts in PostgreSQL, shared by every node. */
import type { StsPolicyRecord, TlsPolicyStore, TlsResultCount } from '../storage.js';
import type { Db } from './db.js';

interface StsRow {
  domain: string;
  id: string;
  mode: StsPolicyRecord['mode'];
  mx: string[];
  max_age: number;
  fetched_at: number;
  expires_at: number;
}

interface CountRow {
  day: string;
  policy_domain: string;
  policy_type: TlsResultCount['policyType'];
  policy_string: string[];
  mx_host: string;
  result_type: string;
  count: number;
}

export class PgTlsPolicies implements TlsPolicyStore {
  constructor(private readonly db: Db) {}

  async stsPolicy(domain: string): Promise<StsPolicyRecord | undefined> {
    const [row] = await this.db.query<StsRow>(`SELECT * FROM sts_policies WHERE domain = $1`, [domain.toLowerCase()]);
    return row && toPolicy(row);
  }

  async saveStsPolicy(p: StsPolicyRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO sts_policies (domain, id, mode, mx, max_age, fetched_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (domain) DO UPDATE SET id = excluded.id, mode = excluded.mode, mx = excluded.mx, max_age = excluded.max_age,
         fetched_at = excluded.fetched_at, expires_at = excluded.expires_at`,
      [p.domain.toLowerCase(), p.id, p.mode, p.mx, p.maxAge, p.fetchedAt, p.expiresAt],
    );
  }

  async countTlsResults(counts: TlsResultCount[]): Promise<void> {
    // One statement per key, in key order, so concurrent nodes never deadlock on the rows.
    const sorted = [...counts].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    await this.db.transaction(async (client) => {
      for (const c of sorted) {
        await client.query(
          `INSERT INTO tls_results (day, policy_domain, policy_type, policy_string, mx_host, result_type, count)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (day, policy_domain, policy_type, policy_string, mx_host, result_type)
           DO UPDATE SET count = tls_results.count + excluded.count`,
          [c.day, c.policyDomain.toLowerCase(), c.policyType, c.policyString, c.mxHost, c.resultType, c.count],
        );
      }
    }, 'off');
  }

  async takeTlsResults(beforeDay: string): Promise<TlsResultCount[]> {
    const rows = await this.db.query<CountRow>(`DELETE FROM tls_results WHERE day < $1 RETURNING *`, [beforeDay]);
    return rows.map(toCount).sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  }
}

const keyOf = (c: TlsResultCount) => JSON.stringify([c.day, c.policyDomain, c.policyType, c.policyString, c.mxHost, c.resultType]);

const toPolicy = (r: StsRow): StsPolicyRecord => ({
  domain: r.domain,
  id: r.id,
  mode: r.mode,
  mx: r.mx,
  maxAge: r.max_age,
  fetchedAt: r.fetched_at,
  expiresAt: r.expires_at,
});

const toCount = (r: CountRow): TlsResultCount => ({
  day: r.day,
  policyDomain: r.policy_domain,
  policyType: r.policy_type,
  policyString: r.policy_string,
  mxHost: r.mx_host,
  resultType: r.result_type,
  count: r.count,
});
