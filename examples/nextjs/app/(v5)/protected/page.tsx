// A protected server component. authgate let the request through only with a
// session and a fresh access token, so the headers say who is signed in and
// carry the token; the page calls an API with it. Auth.js's `auth()` reads
// the same session from authgate's cookie.
import { auth } from "@/auth";
import { accessTokenFrom, identityFrom } from "@/lib/authgate";
import { userinfo } from "@/lib/provider";
import { headers } from "next/headers";
import ApiFetchPanel from "./api-fetch-panel";
import SessionBadge from "./session-badge";
import WhoAmIForm from "./whoami-form";

export const dynamic = "force-dynamic";

export default async function ProtectedPage() {
  const h = await headers();
  const identity = identityFrom(h);
  const token = accessTokenFrom(h);
  const [api, session] = await Promise.all([token ? userinfo(token) : null, auth()]);
  return (
    <main>
      <h1>Protected</h1>
      <section>
        <h2>From authgate&apos;s request headers</h2>
        <dl>
          <dt>x-auth-request-user</dt>
          <dd data-testid="header-user">{identity?.id ?? ""}</dd>
          <dt>x-auth-request-email</dt>
          <dd data-testid="header-email">{identity?.email ?? ""}</dd>
          <dt>x-auth-request-name</dt>
          <dd data-testid="header-name">{identity?.name ?? ""}</dd>
          <dt>x-forwarded-access-token</dt>
          <dd data-testid="header-token">{token ? "present" : "absent"}</dd>
        </dl>
      </section>
      <section>
        <h2>An API called with the access token (the provider&apos;s userinfo)</h2>
        <pre data-testid="api-result">{JSON.stringify(api)}</pre>
      </section>
      <section>
        <h2>Auth.js&apos;s auth(), reading authgate&apos;s cookie</h2>
        <dl>
          <dt>user</dt>
          <dd data-testid="authjs-user">{session?.user ? `${session.user.name} <${session.user.email}>` : "null"}</dd>
          <dt>user id</dt>
          <dd data-testid="authjs-user-id">{session?.user?.id ?? ""}</dd>
        </dl>
      </section>
      <WhoAmIForm />
      <ApiFetchPanel />
      <SessionBadge />
    </main>
  );
}
