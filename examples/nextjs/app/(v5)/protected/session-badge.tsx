"use client";
// The client's view of the same session; a revoked grant shows up here as
// `error: "RefreshTokenError"`, and the app asks the user to sign in again.
import { signIn, signOut, useSession } from "next-auth/react";

export default function SessionBadge() {
  const { data: session, status } = useSession();
  return (
    <section>
      <h2>useSession() on this page</h2>
      <p data-testid="badge-status">{status}</p>
      {session?.error === "RefreshTokenError" ? (
        <button data-testid="signin-again" onClick={() => signIn(session.provider ?? undefined)}>
          Sign in again
        </button>
      ) : status === "authenticated" ? (
        <button data-testid="badge-signout" onClick={() => signOut({ callbackUrl: "/" })}>
          Sign out
        </button>
      ) : null}
    </section>
  );
}
