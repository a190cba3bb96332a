// Variant (a): Auth.js's middleware pattern (authjs.dev/getting-started/session-management/protecting):
// every matched request runs `auth()`, hence the guide's `jwt` callback, hence
// a refresh when the cookie's token expired.
import { auth } from "@/auth";

export default auth((req) => {
  if (!req.auth && req.nextUrl.pathname.startsWith("/protected")) {
    const signIn = new URL("/api/auth/signin", req.nextUrl.origin);
    signIn.searchParams.set("callbackUrl", req.nextUrl.href);
    return Response.redirect(signIn);
  }
});

export const config = {
  matcher: ["/((?!api|_next/static|_next/image|favicon.ico).*)"],
};
