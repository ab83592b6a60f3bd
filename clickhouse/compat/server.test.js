'use strict';
// Tests of server.js through HTTP, as a ClickHouse client sees it: each starts from a request a
// client sends and checks the answer a ClickHouse server gives. The store and rollup tests check
// the rest through clickhouse-go (scripts/test.sh). Run: node --test clickhouse/compat/
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

let server;
let base;

test.before(async () => {
  server = spawn(process.execPath, [path.join(__dirname, 'server.js'), '-listen', '127.0.0.1:0', '-max-body-bytes', '1000000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const addr = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    server.on('exit', (code) => reject(new Error(`server.js exited with ${code} before listening`)));
  });
  base = `http://${addr}/`;
});

test.after(() => {
  server.kill('SIGTERM');
});

async function query(sql, params = {}, init = {}) {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { method: 'POST', body: sql, ...init });
  return { status: res.status, code: res.headers.get('x-clickhouse-exception-code'), text: await res.text() };
}

test('answers a query in the format asked, on ClickHouse 26', async () => {
  const r = await query("SELECT version() LIKE '26.%', 1 + 1", { default_format: 'TabSeparated' });
  assert.deepEqual(r, { status: 200, code: null, text: '1\t2\n' });
});

test('an unknown table is a 404 with the exception code and the message of a server', async () => {
  const r = await query('SELECT * FROM no_such_table');
  assert.equal(r.status, 404);
  assert.equal(r.code, '60');
  assert.match(r.text, /^Code: 60\. DB::Exception: .*no_such_table.*\(UNKNOWN_TABLE\) \(version 26\.[0-9.]+\)\n$/);
});

test('two statements in one query are refused, as by a server', async () => {
  const r = await query('SELECT 1; SELECT 2');
  assert.equal(r.status, 400);
  assert.equal(r.code, '62');
  assert.match(r.text, /Multi-statements are not allowed/);
  // A ";" inside a string or after the only statement is not a second statement.
  assert.equal((await query("SELECT ';' ;")).text, ';\n');
});

test('a URL setting holds for its query only', async () => {
  assert.equal((await query("SELECT getSetting('max_execution_time')", { max_execution_time: '7' })).text, '7\n');
  assert.equal((await query("SELECT getSetting('max_execution_time')")).text, '0\n');
  const r = await query('SELECT 1', { no_such_setting: '1' });
  assert.equal(r.code, '115');
  assert.match(r.text, /no_such_setting/);
});

test('the database parameter is the current database', async () => {
  await query('CREATE DATABASE IF NOT EXISTS compat_db');
  assert.equal((await query('SELECT currentDatabase()', { database: 'compat_db' })).text, 'compat_db\n');
  const r = await query('SELECT 1', { database: 'no_such_db' });
  assert.equal(r.code, '81');
});

test('query parameters bind', async () => {
  assert.equal((await query("SELECT {n:UInt8} + 1, {s:String} = 'it\\'s'", { param_n: '41', param_s: "it's" })).text, '42\t1\n');
});

test('a session keeps its database and settings, and only it', async () => {
  const s = { session_id: 'compat-test' };
  await query('CREATE DATABASE IF NOT EXISTS compat_session');
  await query('USE compat_session', s);
  await query('SET max_threads = 3', s);
  assert.equal((await query("SELECT currentDatabase(), getSetting('max_threads')", s)).text, 'compat_session\t3\n');
  assert.notEqual((await query("SELECT getSetting('max_threads')")).text, '3\n');
  assert.equal((await query('SELECT currentDatabase()')).text, 'default\n');
});

test('only the user default without a password gets in', async () => {
  const auth = (user, pw) => ({ headers: { Authorization: 'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64') } });
  assert.equal((await query('SELECT 1', {}, auth('default', ''))).status, 200);
  const r = await query('SELECT 1', {}, auth('mallory', 'x'));
  assert.equal(r.status, 401);
  assert.equal(r.code, '516');
});

test('an INSERT takes its data from the body', async () => {
  await query('CREATE TABLE IF NOT EXISTS compat_db.t (a UInt32, b String) ENGINE = MergeTree ORDER BY a');
  const r = await query('1\tx\n2\ty\n', { query: 'INSERT INTO compat_db.t (a, b) FORMAT TabSeparated' });
  assert.equal(r.status, 200, r.text);
  assert.equal((await query('SELECT sum(a), groupArray(b) FROM compat_db.t')).text, "3\t['x','y']\n");
});

test('an external table without a structure is refused, naming it', async () => {
  const form = new FormData();
  form.append('query', 'SELECT count() FROM ext');
  form.append('ext', new Blob(['1\n']), '');
  const r = await query(undefined, {}, { body: form });
  assert.equal(r.code, '36');
  assert.match(r.text, /external table ext/);
  const ok = await query(undefined, { ext_structure: 'x UInt8', ext_format: 'TabSeparated' }, { body: form });
  assert.equal(ok.text, '1\n');
});

test('sessions close after their session_timeout, and a bad timeout is refused', async () => {
  await query('SET max_threads = 5', { session_id: 'short', session_timeout: '1' });
  assert.equal((await query("SELECT getSetting('max_threads')", { session_id: 'short', session_timeout: '1', session_check: '1' })).text, '5\n');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const gone = await query('SELECT 1', { session_id: 'short', session_check: '1' });
  assert.equal(gone.code, '372');
  assert.equal((await query('SELECT 1', { session_id: 'x', session_timeout: '0' })).code, '374');
});

test('a body over -max-body-bytes is refused', async () => {
  const r = await query('SELECT 1 -- ' + 'x'.repeat(1_100_000));
  assert.equal(r.status, 413);
  assert.equal(r.code, '299');
});
