#!/usr/bin/env node
// check.js runs Truthboard's ClickHouse statements on a modern ClickHouse embedded through chdb
// (ClickHouse 26.x), so the test suite can prove that every migration and query written for the
// ClickHouse 18.16 server on the development machines also runs on what users deploy.
//
// Input (stdin), one JSON document:
//
//   {
//     "statements": ["CREATE TABLE ...", "INSERT INTO ...", ...],   // run first, in order
//     "queries":    ["SELECT ...", ...],                            // run after, in order
//     "database":   "truthboard"                                    // optional, this default
//   }
//
// Output (stdout), one JSON document:
//
//   {
//     "ok": false,                                   // true only if everything succeeded
//     "engine": {"chdb": "3.4.0", "clickhouse": "26.7.2.1"},
//     "database": "truthboard",
//     "statements": [{"index": 0, "sql": "...", "ok": true}, ...],
//     "queries": [
//       {"index": 0, "sql": "...", "ok": true, "meta": [{"name": "c", "type": "UInt64"}],
//        "rows": [{"c": "3"}]},
//       {"index": 1, "sql": "...", "ok": false, "code": 62,
//        "error": "Code: 62. DB::Exception: Syntax error: ... (SYNTAX_ERROR)"}
//     ]
//   }
//
// Query rows come from ClickHouse's JSON format with output_format_json_quote_64bit_integers=1,
// so 64-bit integers (count(), sum() of integers…) are JSON strings, as on a ClickHouse server
// by default; chdb 3.4.0 defaults to bare numbers, which JavaScript would round above 2^53. Every statement and query runs even after a failure, so one report shows
// every problem; the first failure is usually the cause of later ones.
//
// Exit status: 0 if every statement and query succeeded, 1 if any failed, 2 if the input was
// unusable or the engine could not start (then "error" says why and nothing ran).
//
// Each run uses a fresh chdb Session in a temporary directory that chdb deletes on close().
'use strict';

const DEFAULT_DATABASE = 'truthboard';

// Unqualified table names in the migrations resolve against the session's current database.
// A chdb Session keeps its state between queries like a clickhouse-client session does
// (measured with chdb 3.4.0: USE and SET persist), so one USE at the start is enough.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

async function main() {
  let input;
  try {
    input = parseInput(await readStdin());
  } catch (err) {
    return fail(`bad input: ${err.message}`);
  }

  let chdb;
  try {
    chdb = require('chdb');
  } catch (err) {
    return fail(`cannot load chdb (run "npm ci" in clickhouse/compat): ${err.message}`);
  }

  let session;
  try {
    // No path: chdb creates a temporary directory and removes it in close().
    session = new chdb.Session();
  } catch (err) {
    return fail(`cannot open a chdb session: ${err.message}`);
  }

  try {
    const report = {
      ok: true,
      engine: { chdb: require('chdb/package.json').version, clickhouse: '' },
      database: input.database,
      statements: [],
      queries: [],
    };

    const setup = [
      `CREATE DATABASE IF NOT EXISTS ${input.database}`,
      `USE ${input.database}`,
      'SET output_format_json_quote_64bit_integers = 1',
    ];
    for (const sql of setup) {
      const r = await run(session, sql, 'CSV');
      if (!r.ok) return fail(`setup "${sql}" failed: ${r.error}`);
    }
    const version = await run(session, 'SELECT version()', 'TabSeparated');
    report.engine.clickhouse = version.ok ? version.text.trim() : 'unknown';

    for (const [index, sql] of input.statements.entries()) {
      const r = await run(session, sql, 'CSV');
      report.statements.push(entry(index, sql, r));
      report.ok = report.ok && r.ok;
    }
    for (const [index, sql] of input.queries.entries()) {
      const r = await run(session, sql, 'JSON');
      let e = entry(index, sql, r);
      if (r.ok) {
        try {
          Object.assign(e, parseRows(r.text));
        } catch (err) {
          // chdb, like clickhouse-local, runs every statement of a multi-statement string and
          // prints one JSON document per result; a ClickHouse server refuses such a string.
          e = entry(index, sql, {
            ok: false,
            code: null,
            error: `result is not one JSON document (one statement per query, please): ${err.message}`,
          });
        }
      }
      report.queries.push(e);
      report.ok = report.ok && e.ok;
    }

    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    process.exitCode = report.ok ? 0 : 1;
  } finally {
    session.close();
  }
}

// run executes one statement and returns {ok, text} or {ok: false, code, error}.
//
// It uses queryAsync, awaited one at a time so statements still run in order: in chdb 3.4.0 the
// synchronous Session.query prefixes errors with "Query failed: ", which hides the ClickHouse
// error code from chdb's own parser (err.clickhouseCode stays undefined); queryAsync reports the
// plain "Code: N. DB::Exception: ..." message and sets err.clickhouseCode.
async function run(session, sql, format) {
  try {
    const result = await session.queryAsync(sql, { format });
    return { ok: true, text: result.text() };
  } catch (err) {
    const error = String(err && err.message != null ? err.message : err)
      .replace(/^Query failed: /, '')
      .trim();
    let code = err && err.clickhouseCode;
    if (code === undefined) {
      const m = /^Code:\s*(\d+)\./.exec(error);
      code = m ? Number(m[1]) : null;
    }
    return { ok: false, code, error };
  }
}

function entry(index, sql, r) {
  return r.ok ? { index, sql, ok: true } : { index, sql, ok: false, code: r.code, error: r.error };
}

// parseRows turns ClickHouse JSON output into {meta, rows}. A query that returns no result set
// (for example a SET or an INSERT placed among the queries) prints nothing.
function parseRows(text) {
  if (text.trim() === '') return { meta: [], rows: [] };
  const doc = JSON.parse(text);
  return { meta: doc.meta || [], rows: doc.data || [] };
}

function parseInput(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`stdin is not JSON: ${err.message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Error('expected an object {"statements": [...], "queries": [...]}');
  }
  const list = (name) => {
    const v = doc[name] === undefined ? [] : doc[name];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s.trim() === '')) {
      throw new Error(`"${name}" must be an array of non-empty strings`);
    }
    return v;
  };
  const database = doc.database === undefined ? DEFAULT_DATABASE : doc.database;
  if (typeof database !== 'string' || !IDENTIFIER.test(database)) {
    throw new Error(`"database" must be a plain identifier, got ${JSON.stringify(database)}`);
  }
  const input = { statements: list('statements'), queries: list('queries'), database };
  if (input.statements.length + input.queries.length === 0) {
    throw new Error('nothing to run: "statements" and "queries" are both empty');
  }
  return input;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function fail(message) {
  process.stdout.write(JSON.stringify({ ok: false, error: message }, null, 2) + '\n');
  process.stderr.write(`check.js: ${message}\n`);
  process.exitCode = 2;
}

main().catch((err) => {
  // A bug in this script, not a ClickHouse error.
  fail(`internal error: ${err && err.stack ? err.stack : err}`);
});
