/** The HTTP door checks the API keys that src/submission/api-keys.ts makes and hashes. */
export { hashApiKey, newApiKey } from '../submission/api-keys.js';
