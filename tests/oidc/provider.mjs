// A real OpenID provider for the sign-in tests: oidc-provider (package.json's devDependency) with one
// confidential client, PKCE required, and its development login and consent forms. Whatever login name is
// typed at the login form is the account, and its email claim is that name, so a test can sign in as any
// address. Test use only: it keeps everything in memory and lets anyone in.
//
//   node tests/oidc/provider.mjs --port 5055 --client-id ID --redirect-uri URI [--auth-method client_secret_post]
//
// The client secret comes from OIDC_CLIENT_SECRET, not the command line, which every user of the machine can
// read. Prints `ready <issuer>` on stdout once it listens on 127.0.0.1.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'auth-method': { type: 'string', default: 'client_secret_basic' },
  },
});
const secret = process.env.OIDC_CLIENT_SECRET;
if (!args.port || !args['client-id'] || !args['redirect-uri'] || !secret) {
  console.error('needs --port, --client-id, --redirect-uri and OIDC_CLIENT_SECRET');
  process.exit(2);
}
const authMethod = args['auth-method'];
if (!['client_secret_basic', 'client_secret_post'].includes(authMethod)) {
  console.error(`--auth-method must be client_secret_basic or client_secret_post, not ${authMethod}`);
  process.exit(2);
}

const issuer = `http://127.0.0.1:${args.port}`;
// A signing key of this run's own, rather than the library's published development key.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: secret,
      redirect_uris: [args['redirect-uri']],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: authMethod,
    },
  ],
  // Discovery names only the client's own method, as a provider configured for one would.
  clientAuthMethods: [authMethod],
  pkce: { required: () => true },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put the scopes' claims (email) in the ID token itself, as Entra ID does, not only behind userinfo.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: true, name: id };
      },
    };
  },
});

provider.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
