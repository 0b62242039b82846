/**
 * Why an address is suppressed, by kind: what the feedback stage writes starts with its kind
 * ("complaint: ", "unsubscribe: ", "bounce: "), a hard bounce during delivery is stored as the
 * remote reply ("550 5.1.1 ..."), and everything else was added by an operator.
 */
export const SUPPRESSION_KINDS = ['bounce', 'complaint', 'unsubscribe', 'manual'] as const;
export type SuppressionKind = (typeof SUPPRESSION_KINDS)[number];

export function suppressionKind(reason: string): SuppressionKind {
  if (reason.startsWith('complaint: ')) return 'complaint';
  if (reason.startsWith('unsubscribe: ')) return 'unsubscribe';
  if (/^(bounce: |bounced$|[245]\d\d\b|[245]\.\d{1,3}\.\d{1,3}\b)/.test(reason)) return 'bounce';
  return 'manual';
}
