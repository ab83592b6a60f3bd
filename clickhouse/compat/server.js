#!/usr/bin/env node
// server.js serves a modern ClickHouse (chdb, ClickHouse 26.x embedded in this process) over
// ClickHouse's HTTP interface, so that Truthboard's store and rollup tests run on it through
// clickhouse-go's HTTP protocol (TRUTHBOARD_CLICKHOUSE_PROTOCOL=http), exactly as they run on a
// ClickHouse server: same driver, same SQL, same Native blocks for inserts and answers.
//
//   node clickhouse/compat/server.js [-listen 127.0.0.1:0] [-max-body-bytes N] [-max-queries N]
//
// It prints the address it listens on ("127.0.0.1:PORT") as the first line of stdout, then
// serves until SIGTERM or SIGINT. What it implements is what clickhouse-go sends (see README.md):
//
//   - the query in the body of a POST, or in the "query" URL parameter; with both, the body of
//     an INSERT … FORMAT F is its data (clickhouse-go's batches send Native blocks that way);
//   - the URL parameters database, default_format, client_protocol_version (Native answers carry
//     the block info and serialization flags of that revision), query_id, session_id, param_*
//     (query parameters) and any other name as a setting for this query only, as a server
//     applies it;
//   - user and password (URL parameters, X-ClickHouse-User/-Key or basic authentication): only
//     the user "default" without a password exists, as in a fresh server;
//   - errors as a server sends them before any data: an HTTP status chosen from the exception
//     code, X-ClickHouse-Exception-Code, and "Code: N. DB::Exception: … (NAME) (version V)";
//   - one statement per query (a second one is refused with code 62, as by the server);
//   - session_id: a session keeps its current database (USE) and its settings (SET) between
//     queries, as a server's HTTP session does.
//
// chdb allows one engine per process, so every query runs on one chdb session, one at a time
// (a ClickHouse server would run them in parallel; answers are the same). Before each query the
// harness selects the request's database and applies its settings, and after it restores the
// settings, so that no request sees another's.
'use strict';

const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { withRevision, NativeError } = require('./native');

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

// URL parameters that are not settings.
const RESERVED = new Set([
  'query', 'database', 'default_format', 'client_protocol_version', 'query_id', 'session_id',
  'session_timeout', 'session_check', 'user', 'password', 'quota_key', 'compress', 'decompress',
  'buffer_size', 'wait_end_of_query',
]);

// HTTP statuses of exception codes, from ClickHouse's exceptionCodeToHTTPStatus
// (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp); any other code is 500.
const STATUS = new Map();
for (const c of [194, 195, 516, 192]) STATUS.set(c, 401); // passwords, authentication, unknown user
for (const c of [164, 497, 291]) STATUS.set(c, 403); // READONLY, ACCESS_DENIED, DATABASE_ACCESS_DENIED
for (const c of [
  27, 26, 25, 38, 41, 69, 70, 72, 6, 32, 62, 43, 42, 36, 33, 53, 44, 130, 131, 132, 101, 102,
  103, 160, 68, 47, 184, 215,
]) STATUS.set(c, 400);
for (const c of [60, 81, 46, 50, 56, 115, 73, 107, 45]) STATUS.set(c, 404);
STATUS.set(299, 413); // QUERY_IS_TOO_LARGE
STATUS.set(48, 501); // NOT_IMPLEMENTED
STATUS.set(159, 504); // TIMEOUT_EXCEEDED
STATUS.set(202, 503); // TOO_MANY_SIMULTANEOUS_QUERIES

// ClickHouseError is an answer to send as a ClickHouse exception.
class ClickHouseError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function parseArgs(argv) {
  const o = { listen: '127.0.0.1:0', maxBodyBytes: 64 << 20, maxQueries: 100 };
  const positive = (flag, value, what) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`-${flag} wants a positive number of ${what}, got ${JSON.stringify(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i].replace(/^--?/, '');
    const value = argv[++i];
    if (value === undefined) throw new Error(`-${flag} needs a value`);
    if (flag === 'listen') {
      if (!/^[^:]+:\d+$/.test(value)) throw new Error(`-listen wants host:port, got ${JSON.stringify(value)}`);
      o.listen = value;
    } else if (flag === 'max-body-bytes') o.maxBodyBytes = positive(flag, value, 'bytes');
    else if (flag === 'max-queries') o.maxQueries = positive(flag, value, 'queries');
    else throw new Error(`unknown flag -${flag} (known: -listen host:port, -max-body-bytes N, -max-queries N)`);
  }
  return o;
}

// quoteString writes s as a ClickHouse string literal.
function quoteString(s) {
  return "'" + String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

function quoteIdent(s) {
  return '`' + String(s).replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

// statementEnd returns the index just past the first statement of sql (at its ";" or the end),
// skipping quoted strings, identifiers and comments, so a second statement can be refused.
function statementEnd(sql) {
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      for (i++; i < sql.length && sql[i] !== c; i++) if (sql[i] === '\\') i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === ';') return i;
  }
  return sql.length;
}

function checkOneStatement(sql) {
  const end = statementEnd(sql);
  const rest = sql.slice(end + 1);
  if (end < sql.length && rest.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, '').trim() !== '') {
    throw new ClickHouseError(
      62,
      `Syntax error (Multi-statements are not allowed): failed at position ${end + 1} (end of query): ${sql.slice(end, end + 40)}. . (SYNTAX_ERROR)`,
    );
  }
}

// Sessions close this long after their last query (seconds), as on a server: session_timeout
// sets it per request, up to max_session_timeout. At most MAX_SESSIONS are open at once.
const DEFAULT_SESSION_TIMEOUT = 60;
const MAX_SESSION_TIMEOUT = 3600;
const MAX_SESSIONS = 1000;

// insertData matches an INSERT whose data follow its FORMAT clause, with the data left out.
const INSERT_FORMAT = /^(\s*INSERT\s+INTO\s+[\s\S]*?)\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$/i;

class Harness {
  constructor(chdb, dir) {
    this.chdb = chdb;
    this.dir = dir;
    this.session = new chdb.Session(path.join(dir, 'data'));
    this.queue = Promise.resolve();
    this.sessions = new Map(); // session_id → {database, settings: Map, expires}
    this.files = 0;
    this.version = '';
    this.baseline = new Map(); // settings chdb itself changed, name → value
  }

  async start() {
    this.version = (await this.run('SELECT version()', 'TabSeparated')).toString().trim();
    this.baseline = await this.changedSettings();
  }

  async run(sql, format) {
    const r = await this.session.queryAsync(sql, { format });
    return Buffer.from(r.bytes());
  }

  async changedSettings() {
    const text = (await this.run(
      'SELECT name, value FROM system.settings WHERE changed FORMAT JSONEachRow',
      'JSONEachRow',
    )).toString();
    const m = new Map();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const { name, value } = JSON.parse(line);
      m.set(name, value);
    }
    return m;
  }

  // serialize runs fn after every query queued before it: chdb has one session per process.
  serialize(fn) {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  // execute answers one request: {status, headers, body}.
  async execute(req) {
    const { params } = req;
    let { body } = req;
    checkUser(req);
    let sql = params.get('query');
    let data = null;
    // External tables: a multipart body with the query and one part per table, whose format
    // and structure are the URL parameters <name>_format and <name>_structure.
    const external = [];
    const multipart = /^multipart\/form-data;.*boundary="?([^";]+)"?/i.exec(req.headers['content-type'] || '');
    if (multipart) {
      for (const part of parseMultipart(body, multipart[1])) {
        if (part.name === 'query' && part.filename === null) {
          sql = part.data.toString('utf8');
          continue;
        }
        const structure = params.get(`${part.name}_structure`);
        if (!IDENTIFIER.test(part.name) || structure === null) {
          throw new ClickHouseError(
            36,
            `Neither structure nor types have not been provided for external table ${part.name}. Use fields ${part.name}_structure or ${part.name}_types to do so. (BAD_ARGUMENTS)`,
          );
        }
        external.push({ name: part.name, structure, format: params.get(`${part.name}_format`) || 'TabSeparated', data: part.data });
      }
      body = Buffer.alloc(0);
    }
    if (sql === null) {
      sql = body.toString('utf8');
    } else if (body.length > 0) {
      if (INSERT_FORMAT.test(sql)) data = body;
      else sql = sql + '\n' + body.toString('utf8');
    }
    if (sql.trim() === '') throw new ClickHouseError(62, 'Empty query. (SYNTAX_ERROR)');
    checkOneStatement(sql);

    const settings = new Map();
    const queryParams = {};
    const externalParams = new Set(external.flatMap((e) => [`${e.name}_structure`, `${e.name}_format`, `${e.name}_types`]));
    for (const [k, v] of params) {
      if (RESERVED.has(k) || externalParams.has(k)) continue;
      if (k.startsWith('param_')) {
        queryParams[k.slice(6)] = v;
        continue;
      }
      if (!IDENTIFIER.test(k)) {
        throw new ClickHouseError(115, `Unknown setting '${k}': URL parameter names a setting. (UNKNOWN_SETTING)`);
      }
      settings.set(k, v);
    }
    const revision = Number(params.get('client_protocol_version') || 0);
    if (!Number.isSafeInteger(revision) || revision < 0) {
      throw new ClickHouseError(
        27,
        `Cannot parse input: client_protocol_version=${params.get('client_protocol_version')} is not a revision number. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)`,
      );
    }
    const format = params.get('default_format') || 'TabSeparated';
    if (!IDENTIFIER.test(format)) throw new ClickHouseError(73, `Unknown format ${format}. (UNKNOWN_FORMAT)`);

    const sessionID = params.get('session_id');
    const timeout = Number(params.get('session_timeout') || DEFAULT_SESSION_TIMEOUT);
    if (!(timeout > 0 && timeout <= MAX_SESSION_TIMEOUT)) {
      throw new ClickHouseError(
        374,
        `Session timeout ${params.get('session_timeout')} is not a number of seconds between 1 and max_session_timeout (${MAX_SESSION_TIMEOUT}). (INVALID_SESSION_TIMEOUT)`,
      );
    }
    return this.serialize(async () => {
      let session = null;
      if (sessionID !== null) {
        const now = Date.now();
        for (const [id, old] of this.sessions) if (old.expires < now) this.sessions.delete(id);
        session = this.sessions.get(sessionID);
        if (!session) {
          if (params.get('session_check') === '1') {
            throw new ClickHouseError(372, `Session ${sessionID} not found. (SESSION_NOT_FOUND)`);
          }
          if (this.sessions.size >= MAX_SESSIONS) {
            throw new ClickHouseError(
              202,
              `Too many sessions: ${MAX_SESSIONS} are open; they close ${DEFAULT_SESSION_TIMEOUT} s after their last query (session_timeout). (TOO_MANY_SIMULTANEOUS_QUERIES)`,
            );
          }
          session = { database: null, settings: new Map(), expires: 0 };
          this.sessions.set(sessionID, session);
        }
        session.expires = now + timeout * 1000;
      }
      const database = (session && session.database) || params.get('database') || 'default';
      await this.use(database);
      const applied = new Map([...(session ? session.settings : []), ...settings]);
      for (const [k, v] of applied) await this.set(k, quoteString(v));
      const files = [];
      // chdb reads data from a file, as clickhouse-client's FROM INFILE does.
      const infile = (content) => {
        const file = path.join(this.dir, `data-${++this.files}.bin`);
        fs.writeFileSync(file, content);
        files.push(file);
        return quoteString(file);
      };
      const temporary = [];
      try {
        for (const e of external) {
          if (!IDENTIFIER.test(e.format)) throw new ClickHouseError(73, `Unknown format ${e.format}. (UNKNOWN_FORMAT)`);
          await this.run(`CREATE TEMPORARY TABLE ${quoteIdent(e.name)} (${e.structure}) ENGINE = Memory`, 'TabSeparated');
          temporary.push(e.name);
          await this.run(`INSERT INTO ${quoteIdent(e.name)} FROM INFILE ${infile(e.data)} FORMAT ${e.format}`, 'TabSeparated');
        }
        let text = sql;
        if (data !== null) {
          const m = INSERT_FORMAT.exec(sql);
          text = `${m[1]} FROM INFILE ${infile(data)} FORMAT ${m[2]}`;
        }
        const r = Object.keys(queryParams).length > 0
          ? await this.session.queryBindAsync(text, queryParams, { format })
          : await this.session.queryAsync(text, { format });
        let out = Buffer.from(r.bytes());
        if (format === 'Native' && !hasFormatClause(sql)) out = withRevision(out, revision);
        if (session) await this.remember(session, sql);
        return { body: out, format };
      } finally {
        for (const f of files) fs.rmSync(f, { force: true });
        for (const name of temporary) await this.run(`DROP TEMPORARY TABLE IF EXISTS ${quoteIdent(name)}`, 'TabSeparated');
        if (applied.size > 0 || /^\s*SET\b/i.test(sql)) await this.restore(applied);
      }
    });
  }

  async use(database) {
    if (!IDENTIFIER.test(database)) {
      throw new ClickHouseError(81, `Database ${database} does not exist. (UNKNOWN_DATABASE)`);
    }
    await this.session.queryAsync(`USE ${quoteIdent(database)}`, { format: 'TabSeparated' });
  }

  async set(name, literal) {
    await this.session.queryAsync(`SET ${quoteIdent(name)} = ${literal}`, { format: 'TabSeparated' });
  }

  // restore puts back the settings a query changed (its URL's, its session's, its own SET).
  async restore(applied) {
    const now = await this.changedSettings();
    const names = new Set([...applied.keys(), ...now.keys()]);
    for (const name of names) {
      const base = this.baseline.get(name);
      if (now.get(name) === base) continue;
      await this.set(name, base === undefined ? 'DEFAULT' : quoteString(base));
    }
  }

  // remember keeps what a session's statement changed for its later queries: its database
  // after USE, its settings after SET.
  async remember(session, sql) {
    const first = sql.trim().split(/\s+/)[0].toUpperCase();
    if (first === 'USE') {
      session.database = (await this.run('SELECT currentDatabase()', 'TabSeparated')).toString().trim();
    } else if (first === 'SET') {
      for (const [name, value] of await this.changedSettings()) {
        if (this.baseline.get(name) !== value) session.settings.set(name, value);
      }
    }
  }

  close() {
    this.session.close();
  }
}

// parseMultipart splits a multipart/form-data body into {name, filename, data} parts.
function parseMultipart(body, boundary) {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break; // the closing delimiter
    const headEnd = body.indexOf('\r\n\r\n', pos);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headEnd);
    if (headEnd < 0 || next < 0) throw new ClickHouseError(36, 'Malformed multipart/form-data body. (BAD_ARGUMENTS)');
    const head = body.subarray(pos, headEnd).toString('utf8');
    const name = /\bname="([^"]*)"/i.exec(head);
    const filename = /\bfilename="([^"]*)"/i.exec(head);
    parts.push({ name: name ? name[1] : '', filename: filename ? filename[1] : null, data: body.subarray(headEnd + 4, next) });
    pos = next + 2;
  }
  return parts;
}

function hasFormatClause(sql) {
  return /\bFORMAT\s+[A-Za-z0-9_]+\s*;?\s*$/i.test(sql);
}

// checkUser accepts the user "default" without a password, the only one a fresh server has.
function checkUser(req) {
  let user = req.params.get('user') || req.headers['x-clickhouse-user'] || '';
  let password = req.params.get('password') || req.headers['x-clickhouse-key'] || '';
  const auth = req.headers.authorization || '';
  if (auth.startsWith('Basic ')) {
    const plain = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    user = colon < 0 ? plain : plain.slice(0, colon);
    password = colon < 0 ? '' : plain.slice(colon + 1);
  }
  if ((user === '' || user === 'default') && password === '') return;
  throw new ClickHouseError(
    516,
    `${user || 'default'}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)`,
  );
}

// errorOf turns what a query threw into a ClickHouse exception.
function errorOf(err) {
  if (err instanceof ClickHouseError) return err;
  if (err instanceof NativeError) return new ClickHouseError(1001, `${err.message}. (STD_EXCEPTION)`);
  let message = String(err && err.message != null ? err.message : err).replace(/^Query failed: /, '');
  // chdb repeats the prefix ("Code: 115. DB::Exception: Code: 115. DB::Exception: …").
  let code = err && err.clickhouseCode;
  let m;
  while ((m = /^Code:\s*(\d+)\.\s*DB::Exception:\s*/.exec(message))) {
    code = code === undefined ? Number(m[1]) : code;
    message = message.slice(m[0].length);
  }
  message = message.replace(/ \(version [^)]*\)\. (\([A-Z0-9_]+\))$/, '. $1');
  return new ClickHouseError(code === undefined || code === null ? 1000 : code, message);
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        // Nothing more is kept; the connection closes once the error is sent (see send).
        chunks.length = 0;
        reject(new ClickHouseError(299, `The request body is larger than -max-body-bytes (${limit} bytes). (QUERY_IS_TOO_LARGE)`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`server.js: ${err.message}\n`);
    process.exit(2);
  }
  let chdb;
  try {
    chdb = require('chdb');
  } catch (err) {
    process.stderr.write(`server.js: cannot load chdb (run "npm ci" in clickhouse/compat): ${err.message}\n`);
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'truthboard-chdb-'));
  const harness = new Harness(chdb, dir);
  await harness.start();

  let inflight = 0; // requests read or queued or running
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const send = (status, headers, body) => {
      if (res.headersSent || res.destroyed) return;
      if (!req.complete) {
        // The body was not read to its end (too large): answer, then close the connection.
        headers = { ...headers, Connection: 'close' };
        res.on('finish', () => req.destroy());
      }
      res.writeHead(status, { 'Content-Length': body.length, ...headers });
      res.end(body);
    };
    if ((url.pathname === '/ping' || url.pathname === '/') && !url.searchParams.has('query') && req.method === 'GET') {
      send(200, { 'Content-Type': 'text/html; charset=UTF-8' }, Buffer.from('Ok.\n'));
      return;
    }
    if (url.pathname !== '/') {
      send(404, { 'Content-Type': 'text/plain; charset=UTF-8' }, Buffer.from(`There is no handle ${url.pathname}\n`));
      return;
    }
    const queryID = url.searchParams.get('query_id') || require('crypto').randomUUID();
    const common = {
      'X-ClickHouse-Query-Id': queryID,
      'X-ClickHouse-Server-Display-Name': os.hostname(),
      'X-ClickHouse-Timezone': 'UTC',
    };
    inflight++;
    res.on('close', () => inflight--);
    try {
      if (inflight > opts.maxQueries) {
        throw new ClickHouseError(202, `Too many simultaneous queries. Maximum: ${opts.maxQueries} (-max-queries). (TOO_MANY_SIMULTANEOUS_QUERIES)`);
      }
      const body = await readBody(req, opts.maxBodyBytes);
      const answer = await harness.execute({ params: url.searchParams, headers: req.headers, body });
      send(200, {
        ...common,
        'Content-Type': answer.format === 'Native' ? 'application/octet-stream' : 'text/plain; charset=UTF-8',
        'X-ClickHouse-Format': answer.format,
      }, answer.body);
    } catch (e) {
      const err = errorOf(e);
      send(STATUS.get(err.code) || 500, {
        ...common,
        'Content-Type': 'text/plain; charset=UTF-8',
        'X-ClickHouse-Exception-Code': String(err.code),
      }, Buffer.from(`Code: ${err.code}. DB::Exception: ${err.message} (version ${harness.version})\n`));
    }
  });
  const [host, port] = [opts.listen.slice(0, opts.listen.lastIndexOf(':')), Number(opts.listen.slice(opts.listen.lastIndexOf(':') + 1))];
  // Idle connections stay open 30 s, as with a server's keep_alive_timeout; connections beyond
  // what -max-queries can use are refused.
  server.keepAliveTimeout = 30_000;
  server.maxConnections = 4 * opts.maxQueries;
  server.listen(port, host, () => {
    const a = server.address();
    process.stdout.write(`${a.address}:${a.port}\n`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    harness.queue.finally(() => {
      harness.close();
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`server.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
