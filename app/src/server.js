'use strict';

// Process wiring: real Postgres pool and Redis client, HTTP server, signals.
// The service must start and answer /health (503) while its backends are
// unreachable, and reconnect when they come back.
const { Pool } = require('pg');
const { createClient } = require('redis');
const { createApp } = require('./app');

const PORT = Number(process.env.PORT || 3000);
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
// Past this, shutdown gives up waiting for backends and exits anyway.
const SHUTDOWN_TIMEOUT_MS = 8000;

function log(line) {
  console.log(line);
}
function stamp(msg) {
  log(`${new Date().toISOString()} ${msg}`);
}

const pool = new Pool({
  connectionString: DATABASE_URL,
  connectionTimeoutMillis: 1000,
  query_timeout: 2000,
  max: 10,
});
// An idle client losing its connection emits 'error' on the pool; without a
// listener that would crash the process.
pool.on('error', (err) => stamp(`postgres: idle client error: ${err.message}`));

const redis = createClient({
  url: REDIS_URL,
  // Fail commands at once while disconnected instead of queueing them until
  // the server returns: /health must say "down", not hang.
  disableOfflineQueue: true,
  socket: {
    connectTimeout: 1000,
    // Keep retrying forever, backing off to one attempt every 5 s.
    reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 5000),
  },
});
// node-redis emits 'error' on every failed reconnect; an 'error' event with
// no listener would throw. Log only changes of state to keep logs readable.
let redisState = 'connecting';
redis.on('ready', () => {
  redisState = 'up';
  stamp('redis: connected');
});
redis.on('error', (err) => {
  if (redisState !== 'down') stamp(`redis: ${err.message || err.code || err} (will keep retrying)`);
  redisState = 'down';
});
redis.connect().catch((err) => stamp(`redis: connect failed: ${err.message}`));

const app = createApp({ db: pool, redis, log });
const server = app.listen(PORT, () => stamp(`listening on port ${PORT}`));

let shuttingDown = false;
async function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  stamp(`${signal} received, shutting down`);
  const force = setTimeout(() => {
    stamp('shutdown timed out, exiting');
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  force.unref();

  // Stop accepting; Node 18 keeps idle keep-alive sockets open unless told.
  await new Promise((resolve) => {
    server.close(resolve);
    if (server.closeIdleConnections) server.closeIdleConnections();
  });
  await Promise.allSettled([
    pool.end(),
    // quit() flushes pending replies; a client that never connected is
    // just torn down.
    redis.isReady ? redis.quit() : Promise.resolve(redis.isOpen && redis.disconnect()),
  ]);
  stamp('shutdown complete');
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
