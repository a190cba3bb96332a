// A server component that needs the user's provider access token, in either
// deployment: behind authgate the token is in the request headers; beside it,
// the page asks authgate's token endpoint with the user's cookie (the design
// note's "lazy refresh", done once per expiry however many requests ask).
// Then it calls an API with the token.
import {
  accessTokenFrom,
  currentIdentity,
  isBesideAuthgate,
  tokenFromAuthgate,
  type TokenResult,
} from "@/lib/authgate";
import { userinfo } from "@/lib/provider";
import { headers } from "next/headers";
import { redirect } from "next/navigation";

export const dynamic = "force-dynamic";

async function obtainToken(h: Headers): Promise<{ source: string; result: TokenResult }> {
  if (isBesideAuthgate()) {
    return { source: "token endpoint", result: await tokenFromAuthgate(h.get("cookie") ?? "") };
  }
  const token = accessTokenFrom(h);
  return {
    source: "request header",
    result: token
      ? { ok: true, accessToken: token, expiresAt: null, scope: null }
      : { ok: false, status: 401, error: "SessionRequired", retryAfter: null },
  };
}

export default async function TokenPage() {
  const h = await headers();
  const [identity, { source, result }] = await Promise.all([currentIdentity(), obtainToken(h)]);
  if (!result.ok && (result.error === "SessionRequired" || result.error === "RefreshTokenError")) {
    // Signed out elsewhere, or the provider revoked the grant: sign in again.
    redirect(`/api/auth/signin?callbackUrl=${encodeURIComponent("/protected/token")}`);
  }
  const api = result.ok ? await userinfo(result.accessToken) : null;
  return (
    <main>
      <h1>Access token</h1>
      <dl>
        <dt>user</dt>
        <dd data-testid="token-user">{identity?.id ?? ""}</dd>
        <dt>source</dt>
        <dd data-testid="token-source">{source}</dd>
        <dt>outcome</dt>
        <dd data-testid="token-outcome">{result.ok ? "ok" : `${result.status} ${result.error}`}</dd>
        <dt>expires at</dt>
        <dd data-testid="token-expires-at">{result.ok ? (result.expiresAt ?? "") : ""}</dd>
      </dl>
      <h2>An API called with the token (the provider&apos;s userinfo)</h2>
      <pre data-testid="token-api-result">{JSON.stringify(api)}</pre>
    </main>
  );
}
