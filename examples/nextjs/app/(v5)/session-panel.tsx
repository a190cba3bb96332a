"use client";
// Plain next-auth/react client code: nothing here knows about authgate.
import type { Session } from "next-auth";
import { getCsrfToken, getProviders, getSession, signIn, signOut, useSession } from "next-auth/react";
import Link from "next/link";
import { useEffect, useState } from "react";

type Providers = Awaited<ReturnType<typeof getProviders>>;

export default function SessionPanel() {
  const { data: session, status, update } = useSession();
  const [providers, setProviders] = useState<Providers>(null);
  const [csrfToken, setCsrfToken] = useState("");
  const [fetched, setFetched] = useState<Session | null | undefined>(undefined);

  useEffect(() => {
    getProviders().then(setProviders);
    getCsrfToken().then(setCsrfToken);
  }, []);

  return (
    <section>
      <h2>useSession()</h2>
      <dl>
        <dt>status</dt>
        <dd data-testid="status">{status}</dd>
        <dt>user</dt>
        <dd data-testid="user">{session?.user ? `${session.user.name} <${session.user.email}>` : ""}</dd>
        <dt>expires</dt>
        <dd data-testid="expires">{session?.expires ?? ""}</dd>
        <dt>access token expires at</dt>
        <dd data-testid="access-expires">{session?.accessTokenExpiresAt ?? ""}</dd>
        <dt>error</dt>
        <dd data-testid="session-error">{session?.error ?? ""}</dd>
        <dt>getProviders()</dt>
        <dd data-testid="providers">{providers ? Object.keys(providers).join(", ") : ""}</dd>
        <dt>getCsrfToken()</dt>
        <dd data-testid="csrf">{csrfToken ? "received" : ""}</dd>
        <dt>getSession()</dt>
        <dd data-testid="get-session">{fetched === undefined ? "" : (fetched?.user?.email ?? "null")}</dd>
      </dl>
      {status === "authenticated" && !session?.error ? (
        <button data-testid="signout" onClick={() => signOut({ callbackUrl: "/" })}>
          Sign out
        </button>
      ) : (
        Object.values(providers ?? {}).map((p) => (
          <button key={p.id} data-testid={`signin-${p.id}`} onClick={() => signIn(p.id, { callbackUrl: "/protected" })}>
            Sign in with {p.name}
          </button>
        ))
      )}
      <button data-testid="update" onClick={() => update({ seen: Date.now() })}>
        update()
      </button>
      <button data-testid="get-session-button" onClick={() => getSession().then(setFetched)}>
        getSession()
      </button>
      <p>
        <Link href="/protected" data-testid="to-protected">
          Protected page (client-side navigation)
        </Link>
      </p>
    </section>
  );
}
