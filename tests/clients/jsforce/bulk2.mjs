// Drives the Salesforce sandbox's Bulk API 2.0 query jobs with jsforce's bulk2 API (a client library
// written by others). The sandbox holds BULK_ACCOUNTS accounts named "<BULK_TAG> n", some deleted,
// and serves results pages smaller than that, so jsforce follows Sforce-Locator over several pages.
// Prints one JSON object: {"calls": [{"call", "ok", "error"?}]}.
// Usage: SF_URL=... SF_CLIENT_ID=... SF_CLIENT_SECRET=... BULK_TAG=... BULK_ACCOUNTS=n BULK_DELETED=m node bulk2.mjs
import jsforce from 'jsforce';
import { QueryJobV2 } from 'jsforce/lib/api/bulk2.js';
import assert from 'node:assert/strict';

const conn = new jsforce.Connection({
  oauth2: { loginUrl: process.env.SF_URL, clientId: process.env.SF_CLIENT_ID, clientSecret: process.env.SF_CLIENT_SECRET },
  version: '61.0',
});
const tag = process.env.BULK_TAG;
const total = Number(process.env.BULK_ACCOUNTS);
const deleted = Number(process.env.BULK_DELETED);
const calls = [];

async function call(name, fn) {
  try {
    await fn();
    calls.push({ call: name, ok: true });
  } catch (e) {
    calls.push({ call: name, ok: false, error: `${e.errorCode ?? e.name}: ${e.message}`.slice(0, 500) });
  }
}

// The record stream parses on its first 'record' listener, as jsforce's documentation uses it.
function records(stream) {
  const rows = [];
  return new Promise((resolve, reject) => {
    stream.on('record', (row) => rows.push(row));
    stream.on('end', () => resolve(rows));
    stream.on('error', reject);
  });
}

await call('OAuth client credentials', async () => {
  await conn.authorize({ grant_type: 'client_credentials' });
});
conn.bulk2.pollInterval = 50;
// jsforce's bulk2.query() reads one results page only: it pipes every page into one CSV stream that
// the first page ends (ERR_STREAM_WRITE_AFTER_END, jsforce issues #1546 and #1693, against real orgs
// too). Longer results are read the way jsforce's own QueryJobV2.result() asks for each page, with
// maxRecords added: QueryJobV2.createQueryRequest, which keeps the Sforce-Locator of each response.
async function allPages(operation, soql, maxRecords) {
  const job = new QueryJobV2(conn, { bodyParams: { operation, query: soql }, pollingOptions: conn.bulk2 });
  await job.open();
  await job.poll(50, 30000);
  const rows = [];
  let pages = 0;
  while (job.locator !== 'null') {
    const locator = job.locator ? `&locator=${job.locator}` : '';
    const page = await job.createQueryRequest({ method: 'GET', path: `/${job.id}/results?maxRecords=${maxRecords}${locator}`, headers: { Accept: 'text/csv' } });
    rows.push(...page);
    pages++;
  }

  await job.delete();
  return { rows, pages };
}

await call('bulk2.query of one results page, quotes, commas and newlines in values', async () => {
  const rows = await records(await conn.bulk2.query(`SELECT Id, Name, Description, AnnualRevenue, IsDeleted, SystemModstamp FROM Account WHERE Name = '${tag} 1'`));
  assert.equal(rows.length, 1);
  assert.equal(rows[0].Description, 'Says "hi", twice,\nover two lines');
  assert.equal(rows[0].IsDeleted, 'false');
  assert.equal(Number(rows[0].AnnualRevenue), 1000.5);
  assert.match(rows[0].SystemModstamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});
await call('query job results over several pages (maxRecords, Sforce-Locator)', async () => {
  const { rows, pages } = await allPages('query', `SELECT Id, Name, Phone FROM Account WHERE Name LIKE '${tag}%'`, 40);
  assert.equal(rows.length, total - deleted);
  assert.equal(pages, Math.ceil((total - deleted) / 40));
  assert.equal(new Set(rows.map((r) => r.Id)).size, rows.length);
  assert.ok(rows.every((r) => r.Name.startsWith(tag) && r.Phone.startsWith('+1 415')));
});
await call('queryAll job sees deleted records', async () => {
  const { rows } = await allPages('queryAll', `SELECT Id, IsDeleted FROM Account WHERE Name LIKE '${tag}%'`, 100);
  assert.equal(rows.length, total);
  assert.equal(rows.filter((r) => r.IsDeleted === 'true').length, deleted);
});
await call('bulk2.query with scanAll (queryAll) sees deleted records', async () => {
  // The test deletes the last accounts ("<tag> 223".."<tag> 229" of 230): one page.
  const rows = await records(await conn.bulk2.query(`SELECT Id, Name, IsDeleted FROM Account WHERE Name LIKE '${tag} 22%'`, { scanAll: true }));
  assert.equal(rows.length, 11);
  assert.equal(rows.filter((r) => r.IsDeleted === 'true').length, deleted);
  const live = await records(await conn.bulk2.query(`SELECT Id FROM Account WHERE Name LIKE '${tag} 22%'`));
  assert.equal(live.length, 11 - deleted);
});
await call('bulk2.query of COUNT() is refused', async () => {
  await assert.rejects(conn.bulk2.query('SELECT COUNT() FROM Account'), (e) => e.errorCode === 'API_ERROR' || /COUNT/.test(e.message));
});
await call('bulk2.query of an unknown field is refused', async () => {
  await assert.rejects(conn.bulk2.query('SELECT Id, Nope__c FROM Account'), (e) => e.errorCode === 'INVALID_FIELD');
});
await call('query job abort, list, delete', async () => {
  const job = new QueryJobV2(conn, { bodyParams: { operation: 'query', query: 'SELECT Id FROM Account' }, pollingOptions: conn.bulk2 });
  const opened = await job.open();
  assert.equal(opened.state, 'UploadComplete');
  const aborted = await job.abort();
  assert.equal(aborted.state, 'Aborted');
  const list = await conn.request(`/services/data/v61.0/jobs/query`);
  assert.ok(list.done && list.records.some((j) => j.id === job.id && j.state === 'Aborted'));
  await job.delete();
  await assert.rejects(job.check(), (e) => e.errorCode === 'NOT_FOUND');
});

console.log(JSON.stringify({ calls }));
