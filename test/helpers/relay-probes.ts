/** Open-relay probes, shared by the submission listeners' test and the inbound listener's. */

/** The classic open-relay test list (percent hack, source routes, quoted local parts, bang paths, IP literals, unqualified, empty). */
export const PROBES = [
  'victim@other.test',
  'victim%other.test@acme.test',
  'victim%other.test@[127.0.0.1]',
  '"victim@other.test"@acme.test',
  '"victim%other.test"@acme.test',
  'other.test!victim@acme.test',
  'other.test!victim',
  '@acme.test:victim@other.test',
  '@acme.test,@relay.test:victim@other.test',
  'victim@other.test@acme.test',
  'victim@[127.0.0.1]',
  'victim@[IPv6:::1]',
  'victim',
  'postmaster',
  '',
];
