// Auth.js in the app, for server code that already uses `auth()`: configured
// with the SAME secret and basePath as authgate, it reads authgate's session
// cookie. There are no providers and no refresh code here: authgate signs
// users in and keeps their tokens fresh; `auth()` only reads the session.
import NextAuth from "next-auth";

interface AuthgateClaims {
  ate?: number;
  err?: string;
}

export const { auth } = NextAuth({
  secret: process.env.AUTH_SECRET,
  basePath: "/api/auth",
  // Behind a reverse proxy: take the host from the forwarded headers.
  trustHost: true,
  providers: [],
  session: { strategy: "jwt" },
  callbacks: {
    session({ session, token }) {
      const ours = (token.authgate ?? {}) as AuthgateClaims;
      return {
        ...session,
        user: { ...session.user, id: token.sub ?? "" },
        accessTokenExpiresAt: ours.ate ?? null,
        error: ours.err ?? null,
      };
    },
  },
});
