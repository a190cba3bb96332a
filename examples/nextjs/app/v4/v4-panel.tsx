"use client";
import { signIn, signOut, useSession } from "next-auth-v4/react";

export default function V4Panel() {
  const { data: session, status } = useSession();
  return (
    <section>
      <h2>useSession() (next-auth 4)</h2>
      <p data-testid="v4-status">{status}</p>
      <p data-testid="v4-user">{session?.user ? `${session.user.name} <${session.user.email}>` : ""}</p>
      {status === "authenticated" ? (
        <button data-testid="v4-signout" onClick={() => signOut({ callbackUrl: "/v4" })}>
          Sign out
        </button>
      ) : (
        <button data-testid="v4-signin" onClick={() => signIn("op", { callbackUrl: "/v4" })}>
          Sign in
        </button>
      )}
    </section>
  );
}
