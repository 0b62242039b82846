/**
 * Which destination a delivery belongs to, and whether a reply asks us to slow down. A
 * recipient domain listed by a destination wins; otherwise the first MX host (in preference
 * order) that ends in a listed suffix decides, the longest suffix first, so every domain a
 * provider hosts shares that provider's budget. Unmatched deliveries are not shaped.
 */
import { enhancedStatusOf } from '../bounces/classify.js';
import type { DestinationRule, ShapingRules, SlowdownRule } from './rules.js';

export class DestinationMatcher {
  private readonly byDomain = new Map<string, DestinationRule>();
  /** Longest suffix first. */
  private readonly suffixes: { suffix: string; rule: DestinationRule }[] = [];

  constructor(rules: ShapingRules) {
    for (const rule of rules.destinations) {
      for (const domain of rule.domains) this.byDomain.set(domain, rule);
      for (const suffix of rule.mxSuffixes) this.suffixes.push({ suffix, rule });
    }
    this.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  /** Whether the MX hosts could decide: with no MX suffixes in the rules, DNS need not be asked. */
  get usesMx(): boolean {
    return this.suffixes.length > 0;
  }

  byRecipientDomain(domain: string): DestinationRule | undefined {
    return this.byDomain.get(domain.toLowerCase());
  }

  byMxHosts(hosts: readonly string[]): DestinationRule | undefined {
    for (const raw of hosts) {
      const host = raw.toLowerCase().replace(/\.$/, '');
      const hit = this.suffixes.find(({ suffix }) => host === suffix || host.endsWith(`.${suffix}`));
      if (hit) return hit.rule;
    }
    return undefined;
  }
}

/** A reply (code when there was one, and its text) that one of the rules calls a slow-down. */
export function isSlowdown(rules: readonly SlowdownRule[], code: number | undefined, text: string): boolean {
  const status = enhancedStatusOf(text);
  return rules.some(
    (r) =>
      (r.code === undefined || r.code === code) &&
      (r.status === undefined || statusMatches(r.status, status)) &&
      (r.match === undefined || r.match.test(text)),
  );
}

function statusMatches(pattern: string, status: string | undefined): boolean {
  if (!status) return false;
  const have = status.split('.');
  return pattern.split('.').every((part, i) => part === '*' || part === have[i]);
}
