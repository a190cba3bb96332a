// What authgate tells the app about each request.
//
// BEHIND authgate (reverse proxy) every request that reaches the app carries
// the signed-in user's identity and, with `pass_access_token = true`, a fresh
// provider access token: authgate refreshed it (once, whatever the
// concurrency) before passing the request on. Copies of these headers sent by
// a client are removed by authgate, so they can be trusted as long as the app
// is reachable only through authgate (bind it to 127.0.0.1).
//
// BESIDE authgate (built with `AUTHGATE_URL`: the app serves itself,
// `/api/auth/*` is rewritten to authgate) there are no such headers: the identity comes from
// Auth.js's `auth()` reading authgate's cookie locally, and the access token
// from authgate's token endpoint, asked with this server's service-client
// credentials and the user's cookie. `currentIdentity()` and
// `currentAccessToken()` hide the difference from their callers.
import { auth } from "@/auth";
import { headers } from "next/headers";

/** The headers authgate sets on proxied requests. */
export const AUTHGATE_HEADERS = {
  user: "x-auth-request-user",
  email: "x-auth-request-email",
  name: "x-auth-request-name",
  accessToken: "x-forwarded-access-token",
} as const;

/** The signed-in user, as authgate vouches for them. */
export interface Identity {
  /** authgate's user id. */
  id: string;
  email: string | null;
  name: string | null;
}

/** The identity in these request headers, or `null` when nobody is signed in. */
export function identityFrom(h: Headers): Identity | null {
  const id = h.get(AUTHGATE_HEADERS.user);
  if (!id) return null;
  return {
    id,
    email: h.get(AUTHGATE_HEADERS.email),
    name: h.get(AUTHGATE_HEADERS.name),
  };
}

/** The provider access token in these request headers, if any. */
export function accessTokenFrom(h: Headers): string | null {
  return h.get(AUTHGATE_HEADERS.accessToken);
}

/** Where authgate answers this server's calls (`AUTHGATE_URL` at `next start`). */
function authgateUrl(): string | null {
  return process.env.AUTHGATE_URL?.replace(/\/$/, "") || null;
}

/** What authgate's token endpoint answered. */
export type TokenResult =
  | { ok: true; accessToken: string; expiresAt: number | null; scope: string | null }
  | { ok: false; status: number; error: string; retryAfter: string | null };

/**
 * A fresh access token for the user whose cookies are in `cookie`, from
 * `POST {AUTHGATE_URL}/api/auth/token` with this server's service-client
 * credentials (`AUTHGATE_CLIENT_ID`, `AUTHGATE_CLIENT_SECRET`). authgate
 * refreshes the token first when it is stale — once, however many servers ask
 * at the same time. Only the `Cookie` header is sent on: the browser's other
 * headers (`Origin`, `Sec-Fetch-*`) would make authgate refuse the call.
 */
export async function tokenFromAuthgate(cookie: string): Promise<TokenResult> {
  const base = authgateUrl();
  const id = process.env.AUTHGATE_CLIENT_ID;
  const secret = process.env.AUTHGATE_CLIENT_SECRET;
  if (!base || !id || !secret) {
    return { ok: false, status: 0, error: "AUTHGATE_URL, AUTHGATE_CLIENT_ID and AUTHGATE_CLIENT_SECRET must be set", retryAfter: null };
  }
  try {
    const res = await fetch(`${base}/api/auth/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`,
        "content-type": "application/json",
        cookie,
      },
      body: "{}",
      cache: "no-store",
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok || typeof body.access_token !== "string") {
      return {
        ok: false,
        status: res.status,
        error: typeof body.error === "string" ? body.error : res.statusText,
        retryAfter: res.headers.get("retry-after"),
      };
    }
    return {
      ok: true,
      accessToken: body.access_token,
      expiresAt: typeof body.expires_at === "number" ? body.expires_at : null,
      scope: typeof body.scope === "string" ? body.scope : null,
    };
  } catch (e) {
    return { ok: false, status: 0, error: String(e), retryAfter: null };
  }
}

/** Whether this build runs beside authgate (rather than behind it). */
export function isBesideAuthgate(): boolean {
  return process.env.AUTHGATE_DEPLOYMENT === "beside";
}

/** The current request's identity (server components, server actions). */
export async function currentIdentity(): Promise<Identity | null> {
  if (!isBesideAuthgate()) return identityFrom(await headers());
  const session = await auth();
  if (!session?.user?.id) return null;
  return { id: session.user.id, email: session.user.email ?? null, name: session.user.name ?? null };
}

/** The current request's provider access token (server components, server actions). */
export async function currentAccessToken(): Promise<string | null> {
  const h = await headers();
  if (!isBesideAuthgate()) return accessTokenFrom(h);
  const result = await tokenFromAuthgate(h.get("cookie") ?? "");
  return result.ok ? result.accessToken : null;
}
