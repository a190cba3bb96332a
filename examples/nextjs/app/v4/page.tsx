// next-auth v4 server code keeps working too: its `decode` reads authgate's
// `next-auth.session-token` cookie (cookie_format = "next-auth-v4").
import { decode } from "next-auth-v4/jwt";
import { cookies } from "next/headers";
import V4Panel from "./v4-panel";

export const dynamic = "force-dynamic";

export default async function V4Page() {
  const raw = (await cookies()).get("next-auth.session-token")?.value;
  let server = "no v4 session cookie";
  if (raw && process.env.AUTH_SECRET) {
    const token = await decode({ token: raw, secret: process.env.AUTH_SECRET }).catch(() => null);
    server = token ? `${token.name} <${token.email}>` : "not a v4 session";
  }
  return (
    <main>
      <h1>next-auth v4 client</h1>
      <V4Panel />
      <section>
        <h2>next-auth v4&apos;s decode() on the server</h2>
        <p data-testid="v4-server">{server}</p>
      </section>
    </main>
  );
}
