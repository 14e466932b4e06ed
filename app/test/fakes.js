'use strict';

// In-memory stand-ins for pg's Pool and node-redis' client: just the calls
// createApp makes. `down = true` makes every call fail like a lost server.
class FakeDb {
  constructor() {
    this.visits = 0;
    this.down = false;
    this.queries = [];
  }

  async query(text) {
    this.queries.push(text);
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    if (/^CREATE TABLE/i.test(text)) return { rows: [] };
    if (/^INSERT INTO visits/i.test(text)) {
      this.visits += 1;
      return { rows: [] };
    }
    if (/^SELECT count\(\*\)/i.test(text)) return { rows: [{ count: this.visits }] };
    if (/^SELECT 1/i.test(text)) return { rows: [{ '?column?': 1 }] };
    throw new Error(`FakeDb: unexpected query: ${text}`);
  }
}

class FakeRedis {
  constructor() {
    this.counters = new Map();
    this.down = false;
    this.hang = false;
  }

  check() {
    if (this.hang) return new Promise(() => {});
    if (this.down) return Promise.reject(new Error('The client is closed'));
    return null;
  }

  async incr(key) {
    const failed = this.check();
    if (failed) return failed;
    const value = (this.counters.get(key) || 0) + 1;
    this.counters.set(key, value);
    return value;
  }

  async ping() {
    return this.check() || 'PONG';
  }
}

module.exports = { FakeDb, FakeRedis };
