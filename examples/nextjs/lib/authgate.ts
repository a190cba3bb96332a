// What authgate tells the app about each request, read from the request headers.
//
// Behind authgate (reverse proxy) every request that reaches the app carries
// the signed-in user's identity and, with `pass_access_token = true`, a fresh
// provider access token: authgate refreshed it (once, whatever the
// concurrency) before passing the request on. Copies of these headers sent by
// a client are removed by authgate, so they can be trusted as long as the app
// is reachable only through authgate (bind it to 127.0.0.1).
//
// These helpers are the only place the app learns who is signed in; the
// "beside the app" variant (no proxy) would implement `accessToken()` with
// `POST /api/auth/token` and leave every caller unchanged.
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

/** The current request's identity (server components, server actions). */
export async function currentIdentity(): Promise<Identity | null> {
  return identityFrom(await headers());
}

/** The current request's provider access token (server components, server actions). */
export async function currentAccessToken(): Promise<string | null> {
  return accessTokenFrom(await headers());
}
