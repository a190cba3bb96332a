// A route handler: who is signed in and their access token (from authgate's
// request headers behind it, from `auth()` and the token endpoint beside it),
// and an API call with the token.
import { currentAccessToken, currentIdentity } from "@/lib/authgate";
import { userinfo } from "@/lib/provider";

export const dynamic = "force-dynamic";

export async function GET() {
  const [user, token] = await Promise.all([currentIdentity(), currentAccessToken()]);
  if (!user || !token) {
    // Behind authgate only reachable without authgate in front (authgate
    // answers 401 itself); beside it, whenever the session is missing or over.
    return Response.json({ error: "SessionRequired" }, { status: 401 });
  }
  return Response.json({ user, api: await userinfo(token) });
}
