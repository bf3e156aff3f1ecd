// Drives the Salesforce sandbox with jsforce (a client library written by others) through the calls an
// integration makes every day. Prints one JSON object: {"calls": [{"call", "ok", "error"?}]}.
// Usage: SF_URL=http://127.0.0.1:port SF_CLIENT_ID=... SF_CLIENT_SECRET=... SF_REFRESH_TOKEN=... node everyday.mjs
import jsforce from 'jsforce';
import assert from 'node:assert/strict';

const url = process.env.SF_URL;
const conn = new jsforce.Connection({
  oauth2: { loginUrl: url, clientId: process.env.SF_CLIENT_ID, clientSecret: process.env.SF_CLIENT_SECRET },
  version: '61.0',
});
const calls = [];
const tag = `js-${Date.now()}`;

async function call(name, fn) {
  try {
    await fn();
    calls.push({ call: name, ok: true });
  } catch (e) {
    calls.push({ call: name, ok: false, error: `${e.errorCode ?? e.name}: ${e.message}`.slice(0, 500) });
  }
}

const ids = {};
await call('OAuth client credentials', async () => {
  await conn.authorize({ grant_type: 'client_credentials' });
  assert.ok(conn.accessToken);
});
await call('describeGlobal', async () => {
  const g = await conn.describeGlobal();
  assert.ok(g.sobjects.some((s) => s.name === 'Opportunity'));
});
await call('describe Account', async () => {
  const d = await conn.sobject('Account').describe();
  const byName = Object.fromEntries(d.fields.map((f) => [f.name, f]));
  assert.equal(byName.Description.type, 'textarea');
  assert.equal(byName.CdcSync_Id__c.externalId, true);
  assert.equal(byName.Id.createable, false);
  assert.ok(d.childRelationships.some((r) => r.relationshipName === 'Contacts'));
});
await call('describe Opportunity', async () => {
  const d = await conn.sobject('Opportunity').describe();
  const byName = Object.fromEntries(d.fields.map((f) => [f.name, f]));
  assert.equal(byName.AccountId.referenceTo[0], 'Account');
  assert.equal(byName.StageName.type, 'picklist');
  assert.equal(byName.CloseDate.type, 'date');
  assert.equal(byName.Name.nillable, false);
});
await call('limits', async () => {
  const l = await conn.limits();
  assert.ok(l.DailyApiRequests.Max > 0 && l.DailyApiRequests.Remaining < l.DailyApiRequests.Max);
});
await call('create', async () => {
  const r = await conn.sobject('Account').create({ Name: `${tag} Acme`, Phone: '415-555-0100', Description: 'Key account' });
  assert.ok(r.success);
  ids.acme = r.id;
});
await call('retrieve', async () => {
  const a = await conn.sobject('Account').retrieve(ids.acme);
  assert.equal(a.Name, `${tag} Acme`);
  assert.equal(a.Description, 'Key account');
});
await call('update', async () => {
  const r = await conn.sobject('Account').update({ Id: ids.acme, BillingCity: 'Oakland' });
  assert.ok(r.success);
});
await call('conditional update (If-Unmodified-Since)', async () => {
  // A date before the record's last change: refused with 412, nothing written; a later one: applied.
  const stale = new Date(Date.now() - 3600_000).toUTCString();
  await assert.rejects(
    conn.request({ method: 'PATCH', url: `/sobjects/Account/${ids.acme}`, body: JSON.stringify({ Description: 'stale' }),
                   headers: { 'Content-Type': 'application/json', 'If-Unmodified-Since': stale } }),
    (e) => e.errorCode === 'PRECONDITION_FAILED');
  await conn.request({ method: 'PATCH', url: `/sobjects/Account/${ids.acme}`, body: JSON.stringify({ Description: 'Key account' }),
                       headers: { 'Content-Type': 'application/json', 'If-Unmodified-Since': new Date(Date.now() + 60_000).toUTCString() } });
  assert.equal((await conn.sobject('Account').retrieve(ids.acme)).Description, 'Key account');
});
await call('composite request of conditional updates', async () => {
  const r = await conn.requestPost('/composite', {
    allOrNone: false,
    compositeRequest: [
      { method: 'PATCH', url: `/services/data/v61.0/sobjects/Account/${ids.acme}`, referenceId: 'fresh',
        body: { Phone: '(415) 555-0101' }, httpHeaders: { 'If-Unmodified-Since': new Date(Date.now() + 60_000).toUTCString() } },
      { method: 'PATCH', url: `/services/data/v61.0/sobjects/Account/${ids.acme}`, referenceId: 'stale',
        body: { Phone: '(415) 555-0199' }, httpHeaders: { 'If-Unmodified-Since': new Date(Date.now() - 3600_000).toUTCString() } },
    ],
  });
  assert.deepEqual(r.compositeResponse.map((x) => [x.referenceId, x.httpStatusCode]), [['fresh', 204], ['stale', 412]]);
  assert.equal(r.compositeResponse[1].body[0].errorCode, 'PRECONDITION_FAILED');
  assert.equal((await conn.sobject('Account').retrieve(ids.acme)).Phone, '(415) 555-0101');
});
await call('upsert (create) by external id', async () => {
  const r = await conn.sobject('Account').upsert({ CdcSync_Id__c: `${tag}-beta`, Name: `${tag} Beta` }, 'CdcSync_Id__c');
  assert.ok(r.success);
  assert.equal(r.created, true);
  ids.beta = r.id;
});
await call('upsert (update) by external id', async () => {
  const r = await conn.sobject('Account').upsert({ CdcSync_Id__c: `${tag}-beta`, BillingCity: 'Berkeley' }, 'CdcSync_Id__c');
  assert.ok(r.success);
  assert.equal(r.created, false);
});
await call('create collection', async () => {
  const rs = await conn.sobject('Account').create([
    { Name: `${tag} Gamma`, BillingCity: 'Austin' },
    { Name: `${tag} Delta`, BillingCity: 'Boston' },
    { Name: `${tag} Epsilon` },
  ]);
  assert.ok(rs.every((r) => r.success));
  [ids.gamma, ids.delta, ids.epsilon] = rs.map((r) => r.id);
});
await call('update collection', async () => {
  const rs = await conn.sobject('Account').update([{ Id: ids.gamma, Industry: 'Energy' }, { Id: ids.delta, Industry: 'Retail' }]);
  assert.ok(rs.every((r) => r.success));
});
await call('upsert collection by external id', async () => {
  const rs = await conn.sobject('Account').upsert([
    { CdcSync_Id__c: `${tag}-beta`, Phone: '510-555-0101' },
    { CdcSync_Id__c: `${tag}-zeta`, Name: `${tag} Zeta` },
  ], 'CdcSync_Id__c');
  assert.ok(rs.every((r) => r.success));
  assert.deepEqual(rs.map((r) => r.created), [false, true]);
});
await call('create child records', async () => {
  const c = await conn.sobject('Contact').create({ LastName: 'Rivera', FirstName: 'Ana', AccountId: ids.acme });
  const o = await conn.sobject('Opportunity').create({ Name: `${tag} Renewal`, AccountId: ids.acme, StageName: 'Prospecting', CloseDate: '2030-06-30', Amount: 12000 });
  assert.ok(c.success && o.success);
  ids.opportunity = o.id;
});
await call('SOQL LIKE', async () => {
  const r = await conn.query(`SELECT Id, Name FROM Account WHERE Name LIKE '${tag} %ta'`);
  assert.deepEqual(r.records.map((a) => a.Name).sort(), [`${tag} Beta`, `${tag} Delta`, `${tag} Zeta`]);
});
await call('SOQL IN / NOT IN', async () => {
  const r = await conn.query(`SELECT Id FROM Account WHERE BillingCity IN ('Austin', 'Boston') AND Id NOT IN ('${ids.gamma}') AND Name LIKE '${tag}%'`);
  assert.deepEqual(r.records.map((a) => a.Id), [ids.delta]);
});
await call('SOQL AND / OR / NOT with parentheses', async () => {
  const r = await conn.query(`SELECT Id FROM Account WHERE Name LIKE '${tag}%' AND (Industry = 'Energy' OR (BillingCity = 'Oakland' AND NOT Phone = null))`);
  assert.deepEqual(r.records.map((a) => a.Id).sort(), [ids.acme, ids.gamma].sort());
});
await call('SOQL ORDER BY, LIMIT, OFFSET', async () => {
  const r = await conn.query(`SELECT Name, BillingCity FROM Account WHERE Name LIKE '${tag}%' ORDER BY BillingCity DESC NULLS LAST, Name ASC LIMIT 3 OFFSET 1`);
  assert.deepEqual(r.records.map((a) => a.BillingCity), ['Boston', 'Berkeley', 'Austin']);
});
await call('SOQL date literals', async () => {
  // Literals that hold even when the run crosses midnight UTC; TODAY itself is checked on a manual clock in C#.
  const r = await conn.query(`SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:1 AND LastModifiedDate > N_DAYS_AGO:2 AND Name LIKE '${tag}%' AND CreatedDate < TOMORROW`);
  assert.equal(r.records.length, 6);
  const none = await conn.query(`SELECT Id FROM Opportunity WHERE CloseDate < THIS_MONTH AND Id = '${ids.opportunity}'`);
  assert.equal(none.totalSize, 0);
});
await call('SOQL COUNT()', async () => {
  const r = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${tag}%'`);
  assert.equal(r.totalSize, 6);
});
await call('SOQL parent fields', async () => {
  const r = await conn.query(`SELECT LastName, Account.Name FROM Contact WHERE Account.Name = '${tag} Acme'`);
  assert.equal(r.records[0].Account.Name, `${tag} Acme`);
});
await call('SOQL child subquery', async () => {
  const r = await conn.query(`SELECT Name, (SELECT LastName FROM Contacts), (SELECT Name, StageName FROM Opportunities) FROM Account WHERE Id = '${ids.acme}'`);
  assert.equal(r.records[0].Contacts.records[0].LastName, 'Rivera');
  assert.equal(r.records[0].Opportunities.records[0].StageName, 'Prospecting');
});
await call('SOQL error shapes', async () => {
  await assert.rejects(conn.query('SELECT Nope__c FROM Account'), (e) => e.errorCode === 'INVALID_FIELD' && /Row:1:Column:8/.test(e.message));
  await assert.rejects(conn.query('SELECT Id FROM Account WHERE'), (e) => e.errorCode === 'MALFORMED_QUERY');
  await assert.rejects(conn.query('SELECT Id FROM Nope'), (e) => e.errorCode === 'INVALID_TYPE');
});
await call('query paging over nextRecordsUrl', async () => {
  const batch = Array.from({ length: 150 }, (_, i) => ({ Name: `Bulk ${tag} ${String(i).padStart(3, '0')}` }));
  const created = [...(await conn.sobject('Account').create(batch)), ...(await conn.sobject('Account').create(batch))];
  assert.ok(created.every((r) => r.success));
  const r = await conn.query(`SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk ${tag}%'`, {
    autoFetch: true, maxFetch: 1000, headers: { 'Sforce-Query-Options': 'batchSize=200' },
  });
  assert.equal(r.totalSize, 300);
  assert.equal(r.records.length, 300);
  const deleted = await conn.sobject('Account').destroy(created.map((c) => c.id), { allowRecursive: true });
  assert.ok(deleted.every((d) => d.success));
});
await call('refresh token after the session expires', async () => {
  const refreshing = new jsforce.Connection({
    oauth2: { loginUrl: url, clientId: process.env.SF_CLIENT_ID, clientSecret: process.env.SF_CLIENT_SECRET },
    instanceUrl: url, accessToken: 'expired', refreshToken: process.env.SF_REFRESH_TOKEN, version: '61.0',
  });
  let refreshed = false;
  refreshing.on('refresh', () => { refreshed = true; });
  const r = await refreshing.query(`SELECT COUNT() FROM Account WHERE Id = '${ids.acme}'`);
  assert.equal(r.totalSize, 1);
  assert.ok(refreshed);
});
await call('delete', async () => {
  const r = await conn.sobject('Account').destroy(ids.epsilon);
  assert.ok(r.success);
});
await call('delete collection', async () => {
  const rs = await conn.sobject('Account').destroy([ids.gamma, ids.delta]);
  assert.ok(rs.every((r) => r.success));
});
await call('queryAll returns deleted records', async () => {
  const r = await conn.query(`SELECT Id, IsDeleted FROM Account WHERE Name LIKE '${tag}%' AND IsDeleted = true`, { scanAll: true });
  assert.deepEqual(r.records.map((a) => a.Id).sort(), [ids.epsilon, ids.gamma, ids.delta].sort());
  const live = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${tag}%'`);
  assert.equal(live.totalSize, 3);
});
await call('getDeleted and getUpdated', async () => {
  const start = new Date(Date.now() - 3600_000);
  const end = new Date(Date.now() + 120_000);
  const deleted = await conn.sobject('Account').deleted(start, end);
  assert.ok([ids.epsilon, ids.gamma, ids.delta].every((id) => deleted.deletedRecords.some((d) => d.id === id)));
  const updated = await conn.sobject('Account').updated(start, end);
  assert.ok(updated.ids.includes(ids.acme) && !updated.ids.includes(ids.epsilon));
});
await call('Sforce-Limit-Info header', async () => {
  assert.ok(conn.limitInfo.apiUsage.used > 20, JSON.stringify(conn.limitInfo));
  assert.equal(conn.limitInfo.apiUsage.limit, 100000);
});

console.log(JSON.stringify({ calls }));
