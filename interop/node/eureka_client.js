'use strict';
/*
 * eureka-js-client 4.5 (unmodified) driven over stdin/stdout, one JSON answer per command
 * line, so tests can prove the Eureka emulator with Netflix's protocol as another client
 * library speaks it (see interop/peers.py LinePeer).
 *
 *   ping                      -> {"ok": "pong"}
 *   start {config JSON}       -> registers, starts heartbeats and registry fetches;
 *                                {"ok": "started"} | {"error": ...}
 *   fetch                     -> one registry fetch now (full, or delta once it has a full one
 *                                when config.shouldUseDelta); {"ok": "fetched"}
 *   instances APP             -> {"ok": [{instanceId, hostName, app, port, status, metadata}]}
 *                                from the client's cache (UP instances only, its default)
 *   stats                     -> {"ok": {registered, heartbeats, deltas, fulls}}
 *   stop                      -> deregisters; {"ok": "stopped"}
 *
 * Its logger writes to stderr; stdout carries nothing but answers.
 */

const readline = require('readline');
const { Eureka } = require('eureka-js-client');

const log = (level) => (...args) => process.stderr.write(`[eureka-js ${level}] ${args.map(String).join(' ')}\n`);
const logger = { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') };

let client = null;
const stats = { registered: 0, heartbeats: 0, deltas: 0, fulls: 0 };

function answer(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function instanceView(i) {
  return {
    instanceId: i.instanceId,
    hostName: i.hostName,
    app: i.app,
    ipAddr: i.ipAddr,
    port: i.port && i.port.$,
    status: i.status,
    metadata: i.metadata,
  };
}

function handle(line) {
  const sp = line.indexOf(' ');
  const cmd = sp < 0 ? line : line.slice(0, sp);
  const arg = sp < 0 ? '' : line.slice(sp + 1);
  try {
    switch (cmd) {
      case 'ping':
        return answer({ ok: 'pong' });
      case 'start': {
        const config = JSON.parse(arg);
        config.logger = logger;
        client = new Eureka(config);
        client.on('registered', () => { stats.registered += 1; });
        client.on('heartbeat', () => { stats.heartbeats += 1; });
        const origDelta = client.fetchDelta.bind(client);
        client.fetchDelta = (cb) => { stats.deltas += 1; origDelta(cb); };
        const origFull = client.fetchFullRegistry.bind(client);
        client.fetchFullRegistry = (cb) => { stats.fulls += 1; origFull(cb); };
        return client.start((err) => answer(err ? { error: String(err) } : { ok: 'started' }));
      }
      case 'fetch':
        return client.fetchRegistry((err) => answer(err ? { error: String(err) } : { ok: 'fetched' }));
      case 'instances':
        return answer({ ok: (client.cache.app[arg.toUpperCase()] || []).map(instanceView) });
      case 'stats':
        return answer({ ok: stats });
      case 'stop':
        return client.stop((err) => answer(err ? { error: String(err) } : { ok: 'stopped' }));
      default:
        return answer({ error: `unknown command ${cmd}` });
    }
  } catch (e) {
    return answer({ error: String(e && e.stack || e) });
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => handle(line.trim()));
rl.on('close', () => process.exit(0));
