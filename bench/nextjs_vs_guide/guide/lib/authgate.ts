// Variant (a): the same helpers as examples/nextjs/lib/authgate.ts, answered
// from Auth.js's own session (there is no gateway, hence no headers).
import { auth } from "@/auth";
import { cache } from "react";

export const AUTHGATE_HEADERS = {
  user: "x-auth-request-user",
  email: "x-auth-request-email",
  name: "x-auth-request-name",
  accessToken: "x-forwarded-access-token",
} as const;

export interface Identity {
  id: string;
  email: string | null;
  name: string | null;
}

/** No gateway headers in this variant. */
export function identityFrom(_h: Headers): Identity | null {
  return null;
}

/** No gateway headers in this variant. */
export function accessTokenFrom(_h: Headers): string | null {
  return null;
}

/** One `auth()` per request, shared by both helpers. */
const session = cache(() => auth());

export async function currentIdentity(): Promise<Identity | null> {
  const s = await session();
  if (!s?.user) return null;
  return { id: s.user.email ?? "", email: s.user.email ?? null, name: s.user.name ?? null };
}

export async function currentAccessToken(): Promise<string | null> {
  const s = await session();
  return s && !s.error ? (s.accessToken ?? null) : null;
}
