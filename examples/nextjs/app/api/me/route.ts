// A route handler: identity and access token from the request headers, and an
// API call with the token.
import { accessTokenFrom, identityFrom } from "@/lib/authgate";
import { userinfo } from "@/lib/provider";

export const dynamic = "force-dynamic";

export async function GET(request: Request) {
  const user = identityFrom(request.headers);
  const token = accessTokenFrom(request.headers);
  if (!user || !token) {
    // Only reachable without authgate in front (authgate answers 401 itself).
    return Response.json({ error: "SessionRequired" }, { status: 401 });
  }
  return Response.json({ user, api: await userinfo(token) });
}
