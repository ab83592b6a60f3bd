'use strict';
// native.js rewrites ClickHouse's Native format as chdb writes it (no client revision: no block
// info, no serialization kinds) into the Native format a ClickHouse server sends over HTTP to a
// client that names its protocol revision (the client_protocol_version URL parameter, which
// clickhouse-go always sends): every block starts with its BlockInfo, and from revision 54454 on
// every column's type is followed by a "custom serialization" flag (0: the plain one). The
// column data are copied unchanged, but finding where one column ends needs its type, so every
// type the server could send is walked here; a type that is not known fails the query with a
// message that names it rather than sending something the driver would misread.

// DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION of ClickHouse's src/Core/ProtocolDefines.h.
const REVISION_WITH_CUSTOM_SERIALIZATION = 54454;

// Bytes per row of the types of fixed width.
const FIXED = new Map(Object.entries({
  UInt8: 1, Int8: 1, Bool: 1, Enum8: 1, Nothing: 1,
  UInt16: 2, Int16: 2, Enum16: 2, Date: 2, BFloat16: 2,
  UInt32: 4, Int32: 4, Float32: 4, DateTime: 4, Date32: 4, IPv4: 4, Decimal32: 4,
  UInt64: 8, Int64: 8, Float64: 8, DateTime64: 8, Decimal64: 8,
  IntervalNanosecond: 8, IntervalMicrosecond: 8, IntervalMillisecond: 8, IntervalSecond: 8,
  IntervalMinute: 8, IntervalHour: 8, IntervalDay: 8, IntervalWeek: 8, IntervalMonth: 8,
  IntervalQuarter: 8, IntervalYear: 8,
  UInt128: 16, Int128: 16, UUID: 16, IPv6: 16, Decimal128: 16,
  UInt256: 32, Int256: 32, Decimal256: 32,
}));

class NativeError extends Error {}

// parseType splits "Name(arg, arg)" into {name, args}; arguments are split at top-level commas,
// outside quotes and parentheses.
function parseType(text) {
  const t = text.trim();
  const open = t.indexOf('(');
  if (open < 0) return { name: t, args: [] };
  if (!t.endsWith(')')) throw new NativeError(`cannot read the type ${JSON.stringify(t)}`);
  const name = t.slice(0, open).trim();
  const inner = t.slice(open + 1, -1);
  const args = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      args.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  args.push(inner.slice(start).trim());
  return { name, args };
}

// elementType drops the name of a named tuple's element ("a UInt8" is a UInt8).
function elementType(arg) {
  const m = /^(`[^`]*`|[A-Za-z_][A-Za-z0-9_]*)\s+(\S.*)$/s.exec(arg);
  return m ? m[2] : arg;
}

function decimalWidth(precision) {
  const p = Number(precision);
  if (p <= 9) return 4;
  if (p <= 18) return 8;
  if (p <= 38) return 16;
  return 32;
}

// Reader walks a buffer.
class Reader {
  constructor(buf) {
    this.buf = buf;
    this.pos = 0;
  }
  need(n) {
    if (this.pos + n > this.buf.length) {
      throw new NativeError(`Native data ends ${this.pos + n - this.buf.length} bytes early`);
    }
  }
  varUInt() {
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      this.need(1);
      const b = this.buf[this.pos++];
      x += (b & 0x7f) * mul;
      if (b < 0x80) return x;
      mul *= 128;
    }
    throw new NativeError('bad variable-length integer in Native data');
  }
  uint64() {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new NativeError(`count ${v} too large in Native data`);
    return Number(v);
  }
  string() {
    const n = this.varUInt();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  skip(n) {
    this.need(n);
    this.pos += n;
  }
}

// skipColumn moves r past rows values of type, as SerializationXxx::serializeBinaryBulk*
// writes them (with the state prefix, which only LowCardinality has among the types below).
function skipColumn(r, type, rows) {
  skipPrefix(r, type);
  skipData(r, type, rows);
}

function skipPrefix(r, type) {
  const { name, args } = parseType(type);
  switch (name) {
    case 'LowCardinality':
      r.skip(8); // the key serialization version
      return;
    case 'Nullable':
    case 'Array':
      skipPrefix(r, args[0]);
      return;
    case 'Map':
      skipPrefix(r, args[0]);
      skipPrefix(r, args[1]);
      return;
    case 'Tuple':
      for (const a of args) skipPrefix(r, elementType(a));
      return;
    default:
  }
}

function skipData(r, type, rows) {
  const { name, args } = parseType(type);
  if (FIXED.has(name)) {
    r.skip(FIXED.get(name) * rows);
    return;
  }
  switch (name) {
    case 'Decimal':
      r.skip(decimalWidth(args[0]) * rows);
      return;
    case 'FixedString':
      r.skip(Number(args[0]) * rows);
      return;
    case 'String':
      for (let i = 0; i < rows; i++) r.skip(r.varUInt());
      return;
    case 'Nullable':
      r.skip(rows);
      skipData(r, args[0], rows);
      return;
    case 'Array':
    case 'Map': {
      if (rows === 0) return;
      r.need(rows * 8);
      const total = Number(r.buf.readBigUInt64LE(r.pos + (rows - 1) * 8));
      r.skip(rows * 8);
      if (name === 'Array') skipData(r, args[0], total);
      else {
        skipData(r, args[0], total);
        skipData(r, args[1], total);
      }
      return;
    }
    case 'Tuple':
      for (const a of args) skipData(r, elementType(a), rows);
      return;
    case 'LowCardinality': {
      // Granules of: flags (index width, has keys), keys of the dictionary, indexes.
      const keyType = parseType(args[0]).name === 'Nullable' ? parseType(args[0]).args[0] : args[0];
      let done = 0;
      while (done < rows) {
        const flags = r.uint64();
        if (flags & (1 << 9)) skipData(r, keyType, r.uint64());
        const n = r.uint64();
        r.skip(n * [1, 2, 4, 8][flags & 0xff]);
        done += n;
      }
      return;
    }
    default:
      throw new NativeError(
        `the column type ${type} is not supported by the test harness's Native rewriter (clickhouse/compat/native.js)`,
      );
  }
}

// withRevision returns chdb's Native output buf as a server writes it for a client of the given
// protocol revision. Revision 0 is the format chdb writes, returned as it is.
function withRevision(buf, revision) {
  if (!revision) return buf;
  const r = new Reader(buf);
  const out = [];
  // BlockInfo::write: field 1 is_overflows (false), field 2 bucket_num (-1), end (0).
  const blockInfo = Buffer.from([1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0]);
  const noCustomSerialization = Buffer.from([0]);
  while (r.pos < buf.length) {
    out.push(blockInfo);
    const head = r.pos;
    const columns = r.varUInt();
    const rows = r.varUInt();
    out.push(buf.subarray(head, r.pos));
    for (let c = 0; c < columns; c++) {
      const start = r.pos;
      r.string(); // name
      const type = r.string();
      out.push(buf.subarray(start, r.pos));
      if (revision >= REVISION_WITH_CUSTOM_SERIALIZATION) out.push(noCustomSerialization);
      const data = r.pos;
      if (rows > 0) skipColumn(r, type, rows);
      out.push(buf.subarray(data, r.pos));
    }
  }
  return Buffer.concat(out);
}

module.exports = { withRevision, NativeError };
