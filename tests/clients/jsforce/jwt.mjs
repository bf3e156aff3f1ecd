// Signs in to the Salesforce sandbox with jsforce (a client library written by others) through the OAuth 2.0
// JWT bearer flow, the assertion signed RS256 with Node's crypto, then uses the session; and checks that bad
// assertions are refused with Salesforce's errors. Prints one JSON object: {"calls": [{"call", "ok", "error"?}]}.
// Usage: SF_URL=http://127.0.0.1:port SF_CLIENT_ID=... SF_USERNAME=... SF_PRIVATE_KEY="$(cat server.key)" node jwt.mjs
import jsforce from 'jsforce';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';

const url = process.env.SF_URL;
const grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const calls = [];
const tag = `jwt-${Date.now()}`;

function assertion({ iss = process.env.SF_CLIENT_ID, sub = process.env.SF_USERNAME, aud = url, exp = Math.floor(Date.now() / 1000) + 180 } = {}) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part({ alg: 'RS256' })}.${part({ iss, sub, aud, exp })}`;
  return `${input}.${sign('sha256', Buffer.from(input), process.env.SF_PRIVATE_KEY).toString('base64url')}`;
}

async function call(name, fn) {
  try {
    await fn();
    calls.push({ call: name, ok: true });
  } catch (e) {
    calls.push({ call: name, ok: false, error: `${e.errorCode ?? e.name}: ${e.message}`.slice(0, 500) });
  }
}

// jsforce sends what it is given; with no clientId configured, the form holds only the grant and the assertion.
async function refused(claims, error, description) {
  const conn = new jsforce.Connection({ oauth2: { loginUrl: url }, version: '61.0' });
  await assert.rejects(conn.authorize({ grant_type: grantType, assertion: assertion(claims) }), (e) => {
    assert.equal(e.name, error);
    assert.equal(e.message, description);
    return true;
  });
}

const conn = new jsforce.Connection({ oauth2: { loginUrl: url }, version: '61.0' });
await call('OAuth JWT bearer', async () => {
  const user = await conn.authorize({ grant_type: grantType, assertion: assertion() });
  assert.ok(conn.accessToken);
  assert.equal(conn.instanceUrl, url);
  assert.ok(user.organizationId);
});
await call('query with the JWT session', async () => {
  const r = await conn.query('SELECT Id, Name FROM Account');
  assert.ok(r.records.some((a) => a.Name === 'Made In The Org'));
});
await call('create with the JWT session', async () => {
  const r = await conn.sobject('Account').create({ Name: `${tag} Acme` });
  assert.ok(r.success);
});
await call('expired assertion refused', () => refused({ exp: Math.floor(Date.now() / 1000) - 600 }, 'invalid_grant', 'expired authorization code'));
await call('wrong audience refused', () => refused({ aud: 'https://acme.my.salesforce.com' }, 'invalid_grant', 'audience is invalid'));
await call('unapproved user refused', () => refused({ sub: 'someone.else@example.com' }, 'invalid_grant', "user hasn't approved this consumer"));
await call('unknown consumer key refused', () => refused({ iss: '3MVG9-not-this-app' }, 'invalid_client_id', 'client identifier invalid'));
await call('forged signature refused', async () => {
  const conn2 = new jsforce.Connection({ oauth2: { loginUrl: url }, version: '61.0' });
  const [header, claims] = assertion().split('.');
  await assert.rejects(conn2.authorize({ grant_type: grantType, assertion: `${header}.${claims}.${Buffer.from('forged').toString('base64url')}` }), (e) => {
    assert.equal(e.name, 'invalid_grant');
    assert.equal(e.message, 'invalid assertion');
    return true;
  });
});

console.log(JSON.stringify({ calls }));
