// An upstream OpenID provider that this project did not write: oidc-provider (panva), as
// tests/federation_interop.rs runs it. vhod is its one client; it knows one person.
//
//   OIDC_PROVIDER_PORT     the port on 127.0.0.1 (the issuer is http://localhost:<port>)
//   OIDC_CLIENT_ID         vhod's client_id here
//   OIDC_CLIENT_SECRET     vhod's client secret (client_secret_basic)
//   OIDC_REDIRECT_URIS     vhod's redirect URIs, separated by spaces
//
// It prints `listening <issuer>` when it answers, and exits when its standard input closes
// (the test holds a pipe to it) or on SIGTERM/SIGINT. It listens on 127.0.0.1 only and
// fetches nothing.
//
// The sign-in pages are a minimal interaction implementation on oidc-provider's own API
// (interactionDetails / interactionFinished), plain HTML forms a client without JavaScript
// can submit: GET /interaction/:uid shows the login form (POST …/login: login, password) or
// the consent form (POST …/confirm); GET …/abort declines (access_denied).

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
}

const port = Number(required('OIDC_PROVIDER_PORT'));
const issuer = `http://localhost:${port}`;

// The one person this provider knows (tests/federation_interop.rs uses the same values).
const ACCOUNT = {
  login: 'maria',
  password: 'panva upstream password 42',
  claims: {
    sub: 'panva-0001',
    family_name: 'Петрова',
    given_name: 'Мария',
    email: 'maria.petrova@example.by',
    email_verified: true,
    personal_number: '4010190A001PB5',
  },
};

function sameText(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

// A signing key made for this run: the ID tokens are RS256 (the client default).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

const configuration = {
  clients: [
    {
      client_id: required('OIDC_CLIENT_ID'),
      client_secret: required('OIDC_CLIENT_SECRET'),
      redirect_uris: required('OIDC_REDIRECT_URIS').split(' ').filter(Boolean),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  // PKCE for every client, not only public ones (oidc-provider's default asks it of those).
  pkce: { required: () => true },
  jwks: { keys: [signing] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Which claims each scope releases; personal_number is a scope of its own. With the code flow
  // the ID token carries only `sub` (conformIdTokenClaims): the rest is userinfo's.
  claims: {
    openid: ['sub'],
    profile: ['family_name', 'given_name'],
    email: ['email', 'email_verified'],
    personal_number: ['personal_number'],
  },
  async findAccount(ctx, sub) {
    if (sub !== ACCOUNT.claims.sub) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { ...ACCOUNT.claims };
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

function loginForm(uid, error) {
  return page('Sign in to the upstream', `
${error ? `<p id="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
  <label>Login <input name="login" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a>`);
}

function consentForm(uid, clientId, scopes) {
  const items = scopes.map((s) => `<li>${esc(s)}</li>`).join('');
  return page('Authorize', `
<p>${esc(clientId)} asks for:</p><ul id="scopes">${items}</ul>
<form id="consent" method="post" action="/interaction/${esc(uid)}/confirm">
  <button type="submit">Continue</button>
</form>
<a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a>`);
}

async function formBody(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The interaction routes, before oidc-provider's own (Provider#use puts them first).
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!m) return next();
  const [, uid, action] = m;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'another interaction');
  const { prompt, params } = details;
  ctx.set('Cache-Control', 'no-store');
  ctx.respond = true;

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = loginForm(uid);
    } else if (prompt.name === 'consent') {
      const scopes = prompt.details.missingOIDCScope ?? [];
      ctx.body = consentForm(uid, params.client_id, scopes);
    } else {
      ctx.throw(501, `prompt ${prompt.name}`);
    }
    return undefined;
  }

  if (ctx.method === 'GET' && action === 'abort') {
    ctx.respond = false;
    return provider.interactionFinished(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (ctx.method === 'POST' && action === 'login') {
    if (prompt.name !== 'login') ctx.throw(400, 'not a login prompt');
    const form = await formBody(ctx.req);
    const ok = sameText(form.get('login') ?? '', ACCOUNT.login)
      && sameText(form.get('password') ?? '', ACCOUNT.password);
    if (!ok) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginForm(uid, 'Wrong login or password');
      return undefined;
    }
    ctx.respond = false;
    return provider.interactionFinished(ctx.req, ctx.res, {
      login: { accountId: ACCOUNT.claims.sub },
    }, { mergeWithLastSubmission: false });
  }

  if (ctx.method === 'POST' && action === 'confirm') {
    if (prompt.name !== 'consent') ctx.throw(400, 'not a consent prompt');
    const { grantId, session } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    ctx.respond = false;
    return provider.interactionFinished(ctx.req, ctx.res, {
      consent: { grantId: await grant.save() },
    }, { mergeWithLastSubmission: true });
  }

  ctx.throw(405, 'method not allowed');
  return undefined;
});

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The test holds stdin open: when it goes (the test ended, or was killed), so does this.
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
