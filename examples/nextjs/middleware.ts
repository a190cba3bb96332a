// The app's own middleware, next to authgate.
//
// BEHIND authgate (reverse proxy): authgate has already decided who may see
// each path before a request reaches the app (and answered `/api/auth/*`
// itself), so this middleware never signs anyone in, never refreshes a token
// and never redirects to a login page: it only reads what authgate says. Here
// it tags responses, standing in for whatever the app's middleware does
// (locales, A/B cookies, headers).
//
// BESIDE authgate (built with `AUTHGATE_URL`, see next.config.mjs): nothing stands in front of the app, so
// the middleware does the gate's two cheap jobs itself, without I/O:
// - it removes authgate's identity headers from every request (no proxy
//   strips client-sent copies any more, and a route reading them would
//   believe whoever sent them);
// - it checks the session cookie of `/protected/**` with Auth.js's decoder
//   and the shared secret, sending visitors without one to sign in.
// That check is local: a session signed out elsewhere still passes it until
// the cookie expires, and authgate's token endpoint — the authority — then
// answers 401, which the pages treat as "sign in again".
import { getToken } from "next-auth/jwt";
import { NextResponse, type NextRequest } from "next/server";

/** Headers only authgate may set (see `lib/authgate.ts`). */
const IDENTITY_HEADERS = [
  "x-auth-request-user",
  "x-auth-request-email",
  "x-auth-request-name",
  "x-auth-request-preferred-username",
  "x-auth-request-groups",
  "x-forwarded-access-token",
];

export async function middleware(request: NextRequest) {
  if (process.env.AUTHGATE_DEPLOYMENT !== "beside") {
    const signedIn = request.headers.has("x-auth-request-user");
    const response = NextResponse.next();
    response.headers.set("x-app-middleware", signedIn ? "signed-in" : "anonymous");
    return response;
  }

  const secure = request.nextUrl.protocol === "https:";
  const session = await getToken({ req: request, secret: process.env.AUTH_SECRET, secureCookie: secure });
  if (!session && request.nextUrl.pathname.startsWith("/protected")) {
    // Back to the origin the browser used (the Host header, as Auth.js's
    // `trustHost` does; Next's own `nextUrl` names the address it bound).
    const host = request.headers.get("host") ?? request.nextUrl.host;
    const signIn = new URL(`${request.nextUrl.protocol}//${host}/api/auth/signin`);
    signIn.searchParams.set("callbackUrl", request.nextUrl.pathname + request.nextUrl.search);
    return NextResponse.redirect(signIn);
  }
  const headers = new Headers(request.headers);
  for (const name of IDENTITY_HEADERS) headers.delete(name);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("x-app-middleware", session ? "signed-in" : "anonymous");
  return response;
}

export const config = {
  // Leave authgate's paths and Next's assets alone.
  matcher: ["/((?!api/auth/|_next/static/|_next/image/|favicon.ico).*)"],
};
