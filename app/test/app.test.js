'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const request = require('supertest');
const { createApp } = require('../src/app');
const { FakeDb, FakeRedis } = require('./fakes');

function setup(options = {}) {
  const db = new FakeDb();
  const redis = new FakeRedis();
  const lines = [];
  const app = createApp({ db, redis, log: (line) => lines.push(line), ...options });
  return { app, db, redis, lines };
}

test('GET / records a visit and a hit, and the counts grow', async () => {
  const { app, db } = setup();
  const first = await request(app).get('/').expect(200).expect('Content-Type', /json/);
  assert.deepEqual(first.body, { visits: 1, hits: 1 });
  const second = await request(app).get('/').expect(200);
  assert.deepEqual(second.body, { visits: 2, hits: 2 });
  // The table is created once, not on every request.
  assert.equal(db.queries.filter((q) => /^CREATE TABLE/.test(q)).length, 1);
});

test('GET / answers 503 naming the backend that is down', async () => {
  const { app, db } = setup();
  db.down = true;
  const res = await request(app).get('/').expect(503);
  assert.deepEqual(res.body.down, ['postgres']);
});

test('GET /health is 200 when both backends answer', async () => {
  const { app } = setup();
  const res = await request(app).get('/health').expect(200);
  assert.deepEqual(res.body, { status: 'ok', postgres: 'up', redis: 'up' });
});

test('GET /health is 503 naming redis when redis fails', async () => {
  const { app, redis } = setup();
  redis.down = true;
  const res = await request(app).get('/health').expect(503);
  assert.deepEqual(res.body, { status: 'degraded', postgres: 'up', redis: 'down' });
});

test('GET /health is 503 naming postgres when postgres fails', async () => {
  const { app, db } = setup();
  db.down = true;
  const res = await request(app).get('/health').expect(503);
  assert.deepEqual(res.body, { status: 'degraded', postgres: 'down', redis: 'up' });
});

test('GET /health does not hang on a backend that never answers', async () => {
  const { app, redis } = setup({ timeoutMs: 50 });
  redis.hang = true;
  const started = Date.now();
  const res = await request(app).get('/health').expect(503);
  assert.equal(res.body.redis, 'down');
  assert.ok(Date.now() - started < 1000, 'answered within the timeout');
});

test('each request writes one log line', async () => {
  const { app, lines } = setup();
  await request(app).get('/health').expect(200);
  await request(app).get('/nope').expect(404);
  assert.equal(lines.length, 2);
  assert.match(lines[0], / GET \/health 200 /);
  assert.match(lines[1], / GET \/nope 404 /);
});
