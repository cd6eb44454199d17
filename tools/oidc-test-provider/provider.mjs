#!/usr/bin/env node
// A real OpenID Connect provider (panva/node-oidc-provider, OpenID Certified) on loopback for the portal's SSO tests.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"port": 0, "issuer": optional (default http://127.0.0.1:<port>), "clients": [{client_id, client_secret,
// redirect_uris}], "accounts_file": path, "tamper_jwks": false}. accounts_file is JSON {"<login>": {"email",
// "name", "groups": [...]}}, read again on every claim lookup, so a test can change someone's groups between two
// logins. The built-in development interactions log anyone in by login name (any password) and ask for consent.
// tamper_jwks publishes a different public key under the signing key's id: every signature then fails to verify,
// as it would for tokens from an impostor. Prints one JSON line {"issuer", "port"} on stdout once it listens.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

async function signingKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const meta = { kid, alg: 'RS256', use: 'sig' };
  return { private: { ...(await exportJWK(privateKey)), ...meta }, public: { ...(await exportJWK(publicKey)), ...meta } };
}

function account(login) {
  const accounts = JSON.parse(readFileSync(config.accounts_file, 'utf8'));
  return accounts[login];
}

const server = createServer();
await new Promise((resolve) => { server.listen(config.port || 0, '127.0.0.1', resolve); });
const { port } = server.address();
const issuer = config.issuer || `http://127.0.0.1:${port}`;

const key = await signingKey('portal-test-key');
const impostor = await signingKey('portal-test-key');

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    ...client,
  })),
  jwks: { keys: [key.private] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  async findAccount(ctx, sub) {
    if (!account(sub)) return undefined;
    return {
      accountId: sub,
      async claims() {
        const found = account(sub) || {};
        return {
          sub,
          email: found.email,
          email_verified: true,
          name: found.name || sub,
          preferred_username: sub,
          groups: found.groups || [],
        };
      },
    };
  },
  cookies: { keys: ['portal-oidc-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
});
// The development interactions warn on start-up that they are for development: that is what this is for.
provider.on('server_error', (ctx, error) => { process.stderr.write(`server_error: ${error.stack}\n`); });

if (config.tamper_jwks) {
  provider.use(async (ctx, next) => {
    if (ctx.path === '/jwks') {
      ctx.type = 'application/jwk-set+json';
      ctx.body = { keys: [impostor.public] };
      return;
    }
    await next();
  });
}

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => { server.close(); process.exit(0); });
