'use strict';
/*
 * Line-protocol harness around hessian.js 2.11 (Hessian 2.0), see docs/typed-json.md.
 *
 *   decode HEX   -> {"ok": TJSON} | {"error": "..."}
 *   encode TJSON -> {"ok": "hex"} | {"error": "..."}
 *   ping         -> {"ok": "pong"}
 *
 * decode: hessian.js's DecoderV2 reads the bytes with withType=true. Its public result drops
 * the difference between int, long and double (all become JS numbers) and wraps HashMaps so
 * that back references return a different object, so this harness subclasses the decoder and
 * only *observes* it: `read()` notes which reader hessian.js dispatched to (readInt, readLong,
 * readArray, ...) and `_addRef()` notes each container hessian.js registered. The values,
 * class names, field names, list types and reference targets are all hessian.js's own.
 *
 * encode: TJSON becomes the values a hessian.js user would pass (js-to-java wrappers:
 * java.int / java.long / java.double, {$class, $} for typed lists, maps and objects,
 * ES6 Maps for map entries so keys keep their types and order) and is written with a fresh
 * hessian.js EncoderV2. Typed maps are written as `M type` by adding the type to the encoder's
 * `mapTypes` option (without it hessian.js would write them as field-less objects).
 */

const readline = require('readline');
const util = require('util');
const hessian = require('hessian.js');
const java = require('js-to-java');

const DecoderV2 = hessian.DecoderV2;
const EncoderV2 = hessian.EncoderV2;

// ------------------------------------------------------------------------------------------
// decode

function TracingDecoder(buf) {
  DecoderV2.call(this, buf);
  this.bodies = new Map(); // registered container -> the object hessian.js fills with children
  this.nodes = new Map(); // registered container -> our node
}
util.inherits(TracingDecoder, DecoderV2);

TracingDecoder.prototype._addRef = function (obj) {
  const body = obj && typeof obj === 'object' && !Array.isArray(obj) && typeof obj.$class === 'string'
    ? obj.$
    : obj;
  this.bodies.set(obj, body);
  return DecoderV2.prototype._addRef.call(this, obj);
};

TracingDecoder.prototype.nodeFor = function (registered) {
  let node = this.nodes.get(registered);
  if (!node) {
    node = { t: null };
    this.nodes.set(registered, node);
  }
  return node;
};

TracingDecoder.prototype.read = function () {
  const pos = this.byteBuffer.position();
  if (pos >= this.byteBuffer.limit()) {
    throw new Error('unexpected end of data at ' + pos);
  }
  const code = this.byteBuffer.get(pos);
  const method = this.BYTE_CODES[code];
  const refBefore = this.refId;
  // always ask hessian.js for typed results
  const v = DecoderV2.prototype.read.call(this, true);
  switch (method) {
    case 'readNull':
      return { t: 'null' };
    case 'readBool':
      return { t: 'bool', v: v && typeof v === 'object' ? v.$ : v };
    case 'readInt':
      return { t: 'int', v: v };
    case 'readLong':
      return { t: 'long', v: String(v) };
    case 'readDouble':
      return { t: 'double', v: v };
    case 'readDate':
      return { t: 'date', v: v.getTime() };
    case 'readString':
      return { t: 'string', v: v };
    case 'readBytes':
      return { t: 'binary', v: v };
    case 'readRef': {
      if (!this.nodes.has(v) && !this.bodies.has(v)) {
        throw new Error('reference to an unknown object');
      }
      return { t: 'ref', target: this.nodeFor(v) };
    }
    case 'readArray':
    case 'readHashMap':
    case 'readMap':
    case 'readObject': {
      const registered = this.refMap[refBefore];
      const body = this.bodies.get(registered);
      const node = this.nodeFor(registered);
      if (method === 'readArray') {
        node.t = 'list';
        node.type = Array.isArray(registered) ? null : registered.$class;
        node.items = body.slice();
      } else if (method === 'readObject') {
        node.t = 'object';
        node.type = registered.$class;
        node.fields = Object.keys(body).map((k) => [k, body[k]]);
      } else {
        node.t = 'map';
        node.type = typeof registered.$class === 'string' ? registered.$class : null;
        node.entries = body.$map ? Array.from(body.$map.entries()) : [];
      }
      return node;
    }
    default:
      throw new Error('hessian.js has no reader for code 0x' + code.toString(16));
  }
};

function jsonDouble(d) {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  return d;
}

function deref(n) {
  return n.t === 'ref' ? n.target : n;
}

function children(n) {
  if (n.t === 'list') return n.items;
  if (n.t === 'object') return n.fields.map((f) => f[1]);
  if (n.t === 'map') {
    const out = [];
    for (const [k, v] of n.entries) out.push(k, v);
    return out;
  }
  return [];
}

function isContainer(n) {
  return n.t === 'list' || n.t === 'map' || n.t === 'object';
}

function toTjson(root) {
  const visits = new Map();
  const count = (n) => {
    n = deref(n);
    if (!isContainer(n)) return;
    const c = (visits.get(n) || 0) + 1;
    visits.set(n, c);
    if (c > 1) return;
    for (const ch of children(n)) count(ch);
  };
  count(root);
  const labels = new Map();
  let next = 0;
  const emit = (n) => {
    n = deref(n);
    switch (n.t) {
      case 'null': return ['null'];
      case 'bool': return ['bool', n.v];
      case 'int': return ['int', n.v];
      case 'long': return ['long', n.v];
      case 'double': return ['double', jsonDouble(n.v)];
      case 'string': return ['string', n.v];
      case 'binary': return ['binary', Buffer.from(n.v).toString('base64')];
      case 'date': return ['date', n.v];
      default: break;
    }
    if (!isContainer(n)) throw new Error('incomplete value (reference to an unfinished node)');
    if (labels.has(n)) return ['ref', labels.get(n)];
    let label = null;
    if (visits.get(n) > 1) {
      label = next++;
    }
    labels.set(n, label);
    let out;
    if (n.t === 'list') {
      out = ['list', n.type, n.items.map(emit)];
    } else if (n.t === 'map') {
      out = ['map', n.type, n.entries.map(([k, v]) => [emit(k), emit(v)])];
    } else {
      out = ['object', n.type, n.fields.map(([k, v]) => [k, emit(v)])];
    }
    if (label !== null) out.push(label);
    return out;
  };
  return emit(root);
}

function decode(hex) {
  const buf = fromHex(hex);
  const decoder = new TracingDecoder(buf);
  let node;
  try {
    node = decoder.read();
  } catch (e) {
    if (decoder.byteBuffer.position() >= buf.length) {
      throw new Error('unexpected end of data (hessian.js: ' + e.message + ')');
    }
    throw e;
  }
  const used = decoder.byteBuffer.position();
  if (used > buf.length) {
    throw new Error('truncated input: hessian.js read ' + (used - buf.length) + ' byte(s) past the end');
  }
  if (used !== buf.length) {
    throw new Error((buf.length - used) + ' trailing byte(s) after the first value');
  }
  return toTjson(node);
}

// ------------------------------------------------------------------------------------------
// encode

function integral(v, what) {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
  throw new Error(what + ' needs an integer, got ' + JSON.stringify(v));
}

function toDouble(v) {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new Error('double needs a number, got ' + JSON.stringify(v));
}

function arity(node, min, max) {
  if (node.length < min || node.length > max) {
    throw new Error('wrong number of elements in ' + JSON.stringify(node));
  }
}

function Builder() {
  this.labels = new Map();
  this.mapTypes = {};
}

Builder.prototype.label = function (node, value) {
  if (node.length > 3) {
    const l = node[3];
    if (!Number.isInteger(l)) throw new Error('label must be an integer: ' + JSON.stringify(l));
    if (this.labels.has(l)) throw new Error('label ' + l + ' defined twice');
    this.labels.set(l, value);
  }
};

Builder.prototype.build = function (node) {
  if (!Array.isArray(node) || typeof node[0] !== 'string') {
    throw new Error('TJSON value must be an array starting with a tag: ' + JSON.stringify(node));
  }
  switch (node[0]) {
    case 'null':
      arity(node, 1, 1);
      return null;
    case 'bool':
      arity(node, 2, 2);
      if (typeof node[1] !== 'boolean') throw new Error('bool needs true/false');
      return node[1];
    case 'int': {
      arity(node, 2, 2);
      const n = Number(integral(node[1], 'int'));
      if (n < -2147483648 || n > 2147483647) throw new Error('int out of range: ' + node[1]);
      return java.int(n);
    }
    case 'long':
      arity(node, 2, 2);
      return java.long(String(integral(node[1], 'long')));
    case 'double':
      arity(node, 2, 2);
      return java.double(toDouble(node[1]));
    case 'string':
      arity(node, 2, 2);
      if (typeof node[1] !== 'string') throw new Error('string needs a JSON string');
      return node[1];
    case 'binary':
      arity(node, 2, 2);
      return Buffer.from(node[1], 'base64');
    case 'date':
      arity(node, 2, 2);
      return new Date(Number(integral(node[1], 'date')));
    case 'ref':
      arity(node, 2, 2);
      if (!this.labels.has(node[1])) throw new Error('ref to unknown label ' + node[1]);
      return this.labels.get(node[1]);
    case 'list': {
      arity(node, 3, 4);
      const items = [];
      const value = node[1] === null ? items : { $class: node[1], $: items };
      this.label(node, value);
      for (const item of node[2]) items.push(this.build(item));
      return value;
    }
    case 'map': {
      arity(node, 3, 4);
      const entries = new Map();
      const type = node[1] === null ? 'java.util.HashMap' : node[1];
      if (node[1] !== null) this.mapTypes[node[1]] = true;
      const value = { $class: type, $: entries };
      this.label(node, value);
      for (const pair of node[2]) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          throw new Error('map entry must be [key, value]: ' + JSON.stringify(pair));
        }
        entries.set(this.build(pair[0]), this.build(pair[1]));
      }
      return value;
    }
    case 'object': {
      arity(node, 3, 4);
      const fields = {};
      const value = java(node[1], fields);
      this.label(node, value);
      for (const pair of node[2]) {
        if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
          throw new Error('field must be [name, value]: ' + JSON.stringify(pair));
        }
        fields[pair[0]] = this.build(pair[1]);
      }
      return value;
    }
    default:
      throw new Error('unknown TJSON tag: ' + node[0]);
  }
};

function encode(text) {
  const tjson = JSON.parse(text);
  const builder = new Builder();
  const value = builder.build(tjson);
  const encoder = new EncoderV2({ size: 1024 * 1024, mapTypes: builder.mapTypes });
  encoder.reset();
  return Buffer.from(encoder.write(value).get()).toString('hex');
}

// ------------------------------------------------------------------------------------------
// protocol

function fromHex(hex) {
  const h = hex.replace(/\s+/g, '');
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new Error('bad hex string');
  return Buffer.from(h, 'hex');
}

function handle(line) {
  const text = line.trim();
  if (!text) throw new Error('empty command');
  const sp = text.indexOf(' ');
  const cmd = sp < 0 ? text : text.slice(0, sp);
  const arg = sp < 0 ? '' : text.slice(sp + 1).trim();
  switch (cmd) {
    case 'ping':
      return 'pong';
    case 'decode':
      return decode(arg);
    case 'encode':
      return encode(arg);
    default:
      throw new Error('unknown command: ' + cmd);
  }
}

function main() {
  // Libraries must not write to stdout: it carries the protocol.
  const protocolOut = process.stdout;
  console.log = console.error;
  console.info = console.error;
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    let reply;
    try {
      reply = { ok: handle(line) };
    } catch (e) {
      reply = { error: (e && e.name ? e.name + ': ' : '') + (e && e.message ? e.message : String(e)) };
    }
    protocolOut.write(JSON.stringify(reply) + '\n');
  });
  rl.on('close', () => process.exit(0));
}

if (require.main === module) {
  main();
}

module.exports = { decode, encode };
