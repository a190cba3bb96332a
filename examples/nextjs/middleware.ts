// The app's own middleware, next to authgate. authgate has already decided who
// may see each path before a request reaches the app (and answered
// `/api/auth/*` itself), so this middleware never signs anyone in, never
// refreshes a token and never redirects to a login page: it only reads what
// authgate says. Here it tags responses, standing in for whatever the app's
// middleware does (locales, A/B cookies, headers).
import { NextResponse, type NextRequest } from "next/server";

export function middleware(request: NextRequest) {
  const signedIn = request.headers.has("x-auth-request-user");
  const response = NextResponse.next();
  response.headers.set("x-app-middleware", signedIn ? "signed-in" : "anonymous");
  return response;
}

export const config = {
  // Leave authgate's paths and Next's assets alone.
  matcher: ["/((?!api/auth/|_next/static/|_next/image/|favicon.ico).*)"],
};
