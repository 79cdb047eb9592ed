'use strict';
/*
 * A Dubbo2 (dubbo protocol + hessian2) provider built with sofa-rpc-node 2.10 and
 * dubbo-remoting 2.1.4, used as a real non-Java peer in tests.
 *
 *   node dubbo_provider.js PORT [ZK_ADDRESS]   (PORT 0 = pick a free port)
 *
 * Listens on 127.0.0.1 only. With ZK_ADDRESS (`127.0.0.1:2181/dubbo`: host:port, then the
 * root path) it registers itself in ZooKeeper with sofa-rpc-node's own ZookeeperRegistry
 * (ephemeral node under /dubbo/{interface}/providers) before printing READY, and
 * deregisters (unPublish) first on SIGTERM, as a graceful shutdown does.
 * Prints exactly one line `READY <port>` on stdout once listening (and registered);
 * everything else goes to stderr. Stops on SIGTERM / SIGINT.
 *
 * Service com.tribridge.demo.SofaService, version 1.0.0 (sofa-rpc-node looks services up as
 * `path:version`, so a consumer must send that version; the group is ignored):
 *   echo(Object)             -> the argument as sofa-rpc-node decoded it (see below)
 *   greet(String)            -> "Hello, " + name
 *   add(int, int)            -> int (32-bit wrap-around like Java)
 *   addLong(long, long)      -> long (64-bit wrap-around like Java)
 *   getUser(long)            -> com.tribridge.demo.User {id: long, name: String, age: int}
 *   echoUser(User)           -> the User it got, re-typed as com.tribridge.demo.User
 *   fail(String)             -> throws Error(message)  => status 80 + the message
 *   slow(int)                -> waits that many ms, then "done"
 *
 * How sofa-rpc-node / dubbo-remoting handle values (read from their source):
 * - Request args are decoded with hessian.js `decoder.read()` WITHOUT types: int, long and
 *   double all become JS numbers (longs beyond 2^53 become decimal strings), objects become
 *   plain JS objects (class name dropped), typed lists become plain arrays, maps plain objects.
 * - A return value is written with hessian.js: `{$class, $}` values with their Java type, plain
 *   JS values by guess (integral numbers in int32 range -> int, larger -> long, others -> double;
 *   plain objects -> untyped map `H` with keys sorted).
 * - dubbo-remoting writes a falsy return value (null, 0, false, "") WITHOUT the response flag
 *   byte (bug in Response.encode), so every return here goes through `ret()`, which wraps such
 *   values so that the flag (1 = RESPONSE_VALUE) is written. It never sends flag 2 (null value)
 *   nor the *_WITH_ATTACHMENTS flags, whatever dubbo version the request carries.
 * - A thrown error, an unknown method and an unknown service all become status 80
 *   (SERVER_ERROR) with the message as a hessian string.
 */

const net = require('net');
const java = require('js-to-java');
const { RpcServer } = require('sofa-rpc-node').server;
const { ZookeeperRegistry } = require('sofa-rpc-node').registry;
const dubboProtocol = require('dubbo-remoting');

const INTERFACE = 'com.tribridge.demo.SofaService';
const VERSION = '1.0.0';
const USER_CLASS = 'com.tribridge.demo.User';

function log(level, args) {
  const msg = args.map((a) => (a instanceof Error ? a.stack : typeof a === 'string' ? a : JSON.stringify(a)));
  process.stderr.write('[dubbo_provider] ' + level + ' ' + require('util').format(...msg) + '\n');
}

const logger = {
  debug: () => {},
  info: (...a) => log('INFO', a),
  warn: (...a) => log('WARN', a),
  error: (...a) => log('ERROR', a),
};

/** RpcServer that listens on 127.0.0.1 only (the stock one listens on all interfaces). */
class LocalRpcServer extends RpcServer {
  _startServer(port) {
    const server = net.createServer();
    server.once('error', (err) => { this.emit('error', err); });
    server.on('connection', (socket) => { this._handleSocket(socket); });
    server.listen(port, '127.0.0.1', () => {
      this.publishPort = server.address().port;
      this.logger.info('[RpcServer] server start on 127.0.0.1:%s', this.publishPort);
    });
    return server;
  }
}

/** Wraps a return value so that dubbo-remoting always writes the RESPONSE_VALUE flag. */
function ret(value) {
  if (value && typeof value === 'object' && typeof value.$class === 'string') return value;
  if (value === null || value === undefined) return { $class: 'java.lang.Object', $: null };
  if (value === false) return java.boolean(false);
  if (value === '') return java.String('');
  if (value === 0) return java.int(0);
  return value;
}

const MASK64 = (1n << 64n) - 1n;

function toLong64(big) {
  let v = big & MASK64;
  if (v >= 1n << 63n) v -= 1n << 64n;
  return v;
}

function user(id, name, age) {
  return {
    $class: USER_CLASS,
    $: {
      id: java.long(String(id)),
      name: name === undefined ? null : name,
      age: age === undefined || age === null ? java.int(0) : java.int(age),
    },
  };
}

const delegate = {
  async echo(value) {
    return ret(value);
  },
  async greet(name) {
    return ret('Hello, ' + name);
  },
  async add(a, b) {
    return java.int((a + b) | 0);
  },
  async addLong(a, b) {
    return java.long(String(toLong64(BigInt(a) + BigInt(b))));
  },
  async getUser(id) {
    return user(id, 'user-' + id, 20 + (Number(BigInt(id) % 50n) + 50) % 50);
  },
  async echoUser(u) {
    if (u === null || u === undefined) return ret(null);
    const fields = {};
    for (const key of Object.keys(u)) {
      const v = u[key];
      if (key === 'id' && v !== null && v !== undefined) fields.id = java.long(String(v));
      else if (key === 'age' && v !== null && v !== undefined) fields.age = java.int(v);
      else fields[key] = v;
    }
    return { $class: USER_CLASS, $: fields };
  },
  async fail(message) {
    throw new Error(message);
  },
  async slow(ms) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(ms) || 0)));
    return ret('done');
  },
};

async function main() {
  const port = Number(process.argv[2] || 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('usage: node dubbo_provider.js PORT\n');
    process.exit(2);
  }
  const zkAddress = process.argv[3] || '';
  const registry = zkAddress ? new ZookeeperRegistry({ logger, address: zkAddress }) : undefined;
  const server = new LocalRpcServer({
    appName: 'tribridge-sofa-provider',
    registry,
    publishAddress: '127.0.0.1',
    logger,
    port,
    protocol: dubboProtocol,
    version: VERSION,
    group: '',
    // no response timeout: sofa-rpc-node would silently drop replies slower than this
    responseTimeout: 0,
  });
  server.addService({ interfaceName: INTERFACE, version: VERSION, group: '' }, delegate);
  server.on('error', (err) => logger.error(err));
  await server.start();
  const actual = server._servers[0].address().port;
  if (registry) {
    server.publishPort = actual;
    await registry.ready();
    await server.publish();
  }
  process.stdout.write('READY ' + actual + '\n');

  const stop = async (signal) => {
    logger.info('got %s, stopping', signal);
    if (registry) {
      try {
        await server.unPublish();
        await registry.close();
      } catch (err) {
        logger.error(err);
      }
    }
    for (const s of server._servers) s.close();
    for (const conn of server._connections.values()) conn.socket.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  logger.error(err);
  process.exit(1);
});
