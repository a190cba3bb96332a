"use server";
// A server action: it is a POST to the page's own URL, so it passes through
// authgate like any request and gets the same headers.
import { currentAccessToken, currentIdentity, type Identity } from "@/lib/authgate";
import { userinfo, type UserinfoResult } from "@/lib/provider";

export interface WhoAmI {
  user: Identity | null;
  api: UserinfoResult | null;
}

export async function whoAmI(_previous: WhoAmI | null, _form: FormData): Promise<WhoAmI> {
  const [user, token] = await Promise.all([currentIdentity(), currentAccessToken()]);
  return { user, api: token ? await userinfo(token) : null };
}
