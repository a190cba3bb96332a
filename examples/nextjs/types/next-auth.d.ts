// authgate's session JSON is Auth.js's shape plus these fields.
import "next-auth";

declare module "next-auth" {
  interface Session {
    /** `"RefreshTokenError"` when the provider revoked the grant: sign in again. */
    error?: string | null;
    /** The provider access token's expiry (epoch seconds), kept fresh by authgate. */
    accessTokenExpiresAt?: number | null;
    /** The provider id the user signed in with. */
    provider?: string | null;
  }
}
