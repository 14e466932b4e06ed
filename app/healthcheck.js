'use strict';

// Docker HEALTHCHECK probe: the images carry no curl or wget, so node asks
// the service itself. Exit 0 when /health answers 200, 1 otherwise.
const http = require('http');

const port = Number(process.env.PORT || 3000);
// Below the HEALTHCHECK --timeout (3 s) so the probe reports, not Docker.
const TIMEOUT_MS = 2500;

const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: TIMEOUT_MS }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
req.on('error', (err) => {
  console.error(`healthcheck: ${err.message}`);
  process.exit(1);
});
