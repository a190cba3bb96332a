/**
 * The app runs BEHIND authgate (reverse proxy): authgate serves `/api/auth/*`,
 * decides who may see which path, keeps the provider's tokens fresh, and adds
 * the identity and access-token headers to every request it passes on.
 *
 * The "beside the app" variant (the app serves itself, authgate only answers
 * `/api/auth/*`) would add here:
 *   async rewrites() { return [{ source: "/api/auth/:path*", destination: `${process.env.AUTHGATE_URL}/api/auth/:path*` }]; }
 * and `lib/authgate.ts` would ask `POST /api/auth/token` for the access token.
 *
 * @type {import('next').NextConfig}
 */
const nextConfig = {
  poweredByHeader: false,
  // No ESLint in this example's dependencies; the TypeScript check still runs.
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;
