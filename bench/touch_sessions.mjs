#!/usr/bin/env node
// Touches every session of a cookie file once through the gateway: one
// GET per cookie value, CONCURRENCY at a time, over keep-alive connections.
//
//   node bench/touch_sessions.mjs URL TOKENS_FILE [CONCURRENCY=32] [COOKIE_NAME=authjs.session-token]
//
// Prints the status-code counts and the request rate.
import * as http from "node:http";
import { readFileSync } from "node:fs";

const [url, file, conc = "32", name = "authjs.session-token"] = process.argv.slice(2);
const target = new URL(url);
const tokens = readFileSync(file, "utf8").split("\n").filter(Boolean);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });
const statuses = {};
let next = 0;

function get(token) {
  return new Promise((resolve, reject) => {
    const req = http.get({
      agent, host: target.hostname, port: target.port, path: target.pathname,
      headers: { cookie: `${name}=${token}` },
    }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
  });
}

const started = process.hrtime.bigint();
await Promise.all(Array.from({ length: Number(conc) }, async () => {
  while (next < tokens.length) {
    const status = await get(tokens[next++]);
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
}));
const s = Number(process.hrtime.bigint() - started) / 1e9;
agent.destroy();
console.log(JSON.stringify({ requests: tokens.length, seconds: +s.toFixed(2), per_second: Math.round(tokens.length / s), statuses }));
