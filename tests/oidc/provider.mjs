// A real OpenID Connect provider for Shoal's single-sign-on tests: the certified `oidc-provider`
// with one confidential client, PKCE required, and its built-in development login form (any
// login name, any password). Not for production.
//
//   node provider.mjs PORT            (or OIDC_PORT=PORT)
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI   the one client
//   OIDC_CLAIMS_IN_ID_TOKEN=1   put the scopes' claims in the ID token too (by default, as the
//                               spec says for the code flow, they come from userinfo only)
//
// Prints "listening on http://127.0.0.1:PORT" once it accepts connections.
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.OIDC_PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs PORT (or OIDC_PORT=PORT)');
  process.exit(2);
}
const need = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
};
const client = {
  client_id: need('OIDC_CLIENT_ID'),
  client_secret: need('OIDC_CLIENT_SECRET'),
  redirect_uris: [need('OIDC_REDIRECT_URI')],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

// The accounts the tests sign in as; any other login name gets no groups.
const GROUPS = { alice: ['ops'], bob: ['dev', 'admins'] };

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [client],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  conformIdTokenClaims: process.env.OIDC_CLAIMS_IN_ID_TOKEN !== '1',
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  cookies: { keys: ['shoal-test-oidc-provider-cookie-key'] },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: sub.charAt(0).toUpperCase() + sub.slice(1),
          email: `${sub}@example.test`,
          email_verified: true,
          groups: GROUPS[sub] ?? [],
        };
      },
    };
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
