/**
 * Two deployments, one app:
 *
 * - BEHIND authgate (reverse proxy, the default): authgate serves
 *   `/api/auth/*`, decides who may see which path, keeps the provider's tokens
 *   fresh, and adds the identity and access-token headers to every request it
 *   passes on. Nothing to configure here.
 *
 * - BESIDE authgate (`AUTHGATE_URL` set when building): the app serves itself
 *   and rewrites only `/api/auth/*` to authgate, so the browser talks to one
 *   origin and authgate's cookies stay on the app's origin. The middleware
 *   checks the session cookie locally and server code asks authgate's token
 *   endpoint for the access token (`lib/authgate.ts`).
 *
 * Next.js computes rewrites at `next build` (they are written into the build's
 * routes manifest), so `AUTHGATE_URL` must be set when building, not only when
 * starting. `NEXT_DIST_DIR` lets one checkout hold both builds side by side.
 *
 * @type {import('next').NextConfig}
 */
const authgate = process.env.AUTHGATE_URL?.replace(/\/$/, "");

const nextConfig = {
  poweredByHeader: false,
  distDir: process.env.NEXT_DIST_DIR || ".next",
  // Which deployment this build is for, fixed at build time like the
  // rewrites, for the middleware and `lib/authgate.ts`.
  env: { AUTHGATE_DEPLOYMENT: authgate ? "beside" : "behind" },
  // No ESLint in this example's dependencies; the TypeScript check still runs.
  eslint: { ignoreDuringBuilds: true },
  async rewrites() {
    if (!authgate) return [];
    // beforeFiles: no page or route handler of the app can shadow authgate's.
    return {
      beforeFiles: [{ source: "/api/auth/:path*", destination: `${authgate}/api/auth/:path*` }],
      afterFiles: [],
      fallback: [],
    };
  },
};

export default nextConfig;
