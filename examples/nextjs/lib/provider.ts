// A call to an API with the user's access token: the identity provider's
// userinfo endpoint (found by OpenID discovery at OIDC_ISSUER), standing in for
// any API the app calls on the user's behalf.

const issuer = (process.env.OIDC_ISSUER ?? "http://127.0.0.1:4000").replace(/\/$/, "");

let userinfoEndpoint: Promise<string> | undefined;

async function discoverUserinfo(): Promise<string> {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`, { cache: "no-store" });
  if (!res.ok) throw new Error(`discovery at ${issuer} answered ${res.status}`);
  const doc = (await res.json()) as { userinfo_endpoint?: string };
  if (!doc.userinfo_endpoint) throw new Error(`${issuer} has no userinfo endpoint`);
  return doc.userinfo_endpoint;
}

/** What the API answered. */
export type UserinfoResult =
  | { ok: true; sub: string; name?: string; email?: string }
  | { ok: false; status: number; error: string };

/** Calls the provider's userinfo endpoint with `accessToken` as a bearer token. */
export async function userinfo(accessToken: string): Promise<UserinfoResult> {
  try {
    userinfoEndpoint ??= discoverUserinfo();
    const endpoint = await userinfoEndpoint.catch((e) => {
      userinfoEndpoint = undefined;
      throw e;
    });
    const res = await fetch(endpoint, {
      headers: { authorization: `Bearer ${accessToken}` },
      cache: "no-store",
    });
    if (!res.ok) {
      return { ok: false, status: res.status, error: res.headers.get("www-authenticate") ?? res.statusText };
    }
    const claims = (await res.json()) as { sub: string; name?: string; email?: string };
    return { ok: true, sub: claims.sub, name: claims.name, email: claims.email };
  } catch (e) {
    return { ok: false, status: 0, error: String(e) };
  }
}
