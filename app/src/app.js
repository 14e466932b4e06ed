'use strict';

// The HTTP application, with its backends injected so tests can use fakes.
//   db:    anything with pg's `query(text, params) -> Promise<{ rows }>`
//   redis: anything with node-redis v4's `incr(key)` and `ping()`
const express = require('express');

const CHECK_TIMEOUT_MS = 1000;
const HITS_KEY = 'hits';

const CREATE_TABLE_SQL = `CREATE TABLE IF NOT EXISTS visits (
  id BIGSERIAL PRIMARY KEY,
  visited_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

// A backend that hangs must not hang the request: a health check that never
// answers is worse than one that says "down".
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

class BackendError extends Error {
  constructor(backend, cause) {
    super(`${backend} unavailable: ${cause && cause.message ? cause.message : cause}`);
    this.backend = backend;
  }
}

function createApp({ db, redis, timeoutMs = CHECK_TIMEOUT_MS, log = console.log } = {}) {
  if (!db || !redis) throw new TypeError('createApp needs { db, redis }');

  // Create the table once per process, but retry after a failure (the
  // database may come up after the service does).
  let tableReady = null;
  function ensureTable() {
    if (!tableReady) {
      tableReady = Promise.resolve(db.query(CREATE_TABLE_SQL)).catch((err) => {
        tableReady = null;
        throw err;
      });
    }
    return tableReady;
  }

  async function recordVisit() {
    try {
      await withTimeout(ensureTable(), timeoutMs, 'postgres');
      await withTimeout(db.query('INSERT INTO visits DEFAULT VALUES'), timeoutMs, 'postgres');
      const { rows } = await withTimeout(
        db.query('SELECT count(*)::int AS count FROM visits'),
        timeoutMs,
        'postgres',
      );
      return Number(rows[0].count);
    } catch (err) {
      throw new BackendError('postgres', err);
    }
  }

  async function countHit() {
    try {
      return Number(await withTimeout(redis.incr(HITS_KEY), timeoutMs, 'redis'));
    } catch (err) {
      throw new BackendError('redis', err);
    }
  }

  async function probe(check, what) {
    try {
      await withTimeout(check(), timeoutMs, what);
      return 'up';
    } catch {
      return 'down';
    }
  }

  const app = express();
  app.disable('x-powered-by');

  // One line per request, written when the response is done.
  app.use((req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      log(`${new Date().toISOString()} ${req.method} ${req.originalUrl} ${res.statusCode} ${ms.toFixed(1)}ms`);
    });
    next();
  });

  app.get('/', async (req, res) => {
    // Both backends are asked even if one fails, so the error names each
    // one that is down.
    const [visits, hits] = await Promise.allSettled([recordVisit(), countHit()]);
    if (visits.status === 'fulfilled' && hits.status === 'fulfilled') {
      res.json({ visits: visits.value, hits: hits.value });
      return;
    }
    const down = [visits, hits].filter((r) => r.status === 'rejected').map((r) => r.reason);
    for (const err of down) log(`${new Date().toISOString()} error: ${err.message}`);
    res.status(503).json({
      error: 'backend unavailable',
      down: down.map((err) => err.backend || 'unknown'),
    });
  });

  app.get('/health', async (req, res) => {
    const [postgres, redisState] = await Promise.all([
      probe(() => db.query('SELECT 1'), 'postgres'),
      probe(() => redis.ping(), 'redis'),
    ]);
    const ok = postgres === 'up' && redisState === 'up';
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'degraded',
      postgres,
      redis: redisState,
    });
  });

  app.use((req, res) => {
    res.status(404).json({ error: 'not found' });
  });

  // Express's default handler answers HTML with a stack trace; keep JSON.
  // (Express tells error handlers apart by their four parameters.)
  app.use((err, req, res, _next) => {
    log(`${new Date().toISOString()} error: ${err.stack || err}`);
    res.status(500).json({ error: 'internal error' });
  });

  return app;
}

module.exports = { createApp, withTimeout };
