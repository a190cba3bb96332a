#!/usr/bin/env node
// The benchmark upstream: a minimal Node `http` server answering every
// request with 200 "ok" (2 bytes, text/plain), keep-alive on.
//
//   node bench/upstream.mjs [PORT]      (127.0.0.1; default 38181)
//
// Chosen as the simplest fair upstream: the same process is reached directly
// and through each gateway, so the ratio isolates what the gateway adds.
// One Node process = one core at most.
import * as http from "node:http";

const port = Number(process.argv[2] ?? 38181);
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
  res.end("ok");
});
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1", () => process.stdout.write(`upstream listening on 127.0.0.1:${port}\n`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
