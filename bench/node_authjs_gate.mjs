#!/usr/bin/env node
// The Auth.js-middleware equivalent for the gateway throughput comparison
// (issue #6): a Node `http` server that, per request, reads the
// `authjs.session-token` cookie, validates it with @auth/core's `decode`
// (what `auth()` in Next.js middleware does for the JWT strategy), answers
// 401 without a valid session, and otherwise proxies the request to the
// upstream over a keep-alive agent, adding an identity header — the same job
// authgate does for a protected route.
//
//   node bench/node_authjs_gate.mjs [--port 38182] [--upstream http://127.0.0.1:38181]
//                                   [--secret S] [--salt authjs.session-token]
//
// Single process (one core), like one Next.js server.
import * as http from "node:http";
import { importInterop } from "./lib.mjs";

const { decode } = await importInterop("@auth/core/jwt");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = Number(opt("--port", 38182));
const upstream = new URL(opt("--upstream", "http://127.0.0.1:38181"));
const secret = opt("--secret", "test-secret-at-least-32-chars-long!!");
const salt = opt("--salt", "authjs.session-token");
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

function sessionCookie(header) {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === salt) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const server = http.createServer(async (req, res) => {
  let claims = null;
  const token = sessionCookie(req.headers.cookie);
  if (token) {
    try {
      claims = await decode({ token, secret, salt });
    } catch {
      claims = null;
    }
  }
  if (!claims?.sub) {
    res.writeHead(401, { "content-type": "application/json" });
    res.end('{"error":"unauthenticated"}');
    return;
  }
  const headers = { ...req.headers, "x-auth-request-user": claims.sub };
  if (claims.email) headers["x-auth-request-email"] = claims.email;
  const out = http.request({
    agent,
    host: upstream.hostname,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers,
  }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  out.on("error", () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1", () => process.stdout.write(`node @auth/core gate on 127.0.0.1:${port} -> ${upstream.origin}\n`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
