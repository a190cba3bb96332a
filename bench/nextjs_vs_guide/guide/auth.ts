// Variant (a): the app refreshes provider tokens itself, as Auth.js's
// "Refresh Token Rotation" guide shows (authjs.dev/guides/refresh-token-rotation,
// JWT strategy): tokens in the session cookie, refresh in the `jwt` callback,
// `error: "RefreshTokenError"` on failure. The `jwt` callback below is the
// guide's code; only the provider (the local oidc-provider) and the token
// endpoint differ. This is what the README's migration guide deletes.
import NextAuth from "next-auth";

const issuer = process.env.OIDC_ISSUER ?? "http://127.0.0.1:4000";
const clientId = process.env.OIDC_CLIENT_ID ?? "guide";
const clientSecret = process.env.OIDC_CLIENT_SECRET ?? "";

export const { handlers, auth, signIn, signOut } = NextAuth({
  secret: process.env.AUTH_SECRET,
  basePath: "/api/auth",
  trustHost: true,
  providers: [
    {
      id: "op",
      name: "Local OP",
      type: "oidc",
      issuer,
      clientId,
      clientSecret,
      client: { token_endpoint_auth_method: "client_secret_post" },
      authorization: { params: { scope: "openid email profile offline_access", prompt: "consent" } },
    },
  ],
  callbacks: {
    async jwt({ token, account }) {
      if (account) {
        // First-time login, save the `access_token`, its expiry and the `refresh_token`
        return {
          ...token,
          access_token: account.access_token ?? "",
          expires_at: account.expires_at ?? 0,
          refresh_token: account.refresh_token,
        };
      } else if (Date.now() < token.expires_at * 1000) {
        // Subsequent logins, but the `access_token` is still valid
        return token;
      } else {
        // Subsequent logins, but the `access_token` has expired, try to refresh it
        if (!token.refresh_token) throw new TypeError("Missing refresh_token");

        try {
          const response = await fetch(`${issuer}/token`, {
            method: "POST",
            body: new URLSearchParams({
              client_id: clientId,
              client_secret: clientSecret,
              grant_type: "refresh_token",
              refresh_token: token.refresh_token,
            }),
          });

          const tokensOrError = await response.json();

          if (!response.ok) throw tokensOrError;

          const newTokens = tokensOrError as {
            access_token: string;
            expires_in: number;
            refresh_token?: string;
          };

          return {
            ...token,
            access_token: newTokens.access_token,
            expires_at: Math.floor(Date.now() / 1000 + newTokens.expires_in),
            // Some providers only issue refresh tokens once, so preserve if we did not get a new one
            refresh_token: newTokens.refresh_token ? newTokens.refresh_token : token.refresh_token,
          };
        } catch (error) {
          console.error("Error refreshing access_token", error);
          // If we fail to refresh the token, return an error so we can handle it on the page
          token.error = "RefreshTokenError";
          return token;
        }
      }
    },
    async session({ session, token }) {
      session.error = token.error;
      // Server code needs the token: the usual addition to the guide.
      session.accessToken = token.access_token;
      return session;
    },
  },
});
