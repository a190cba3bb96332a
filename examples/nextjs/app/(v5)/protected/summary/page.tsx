// The smallest protected page: who is signed in and whether a token came
// along, from the headers alone (the benchmark's protected page).
import { currentAccessToken, currentIdentity } from "@/lib/authgate";

export const dynamic = "force-dynamic";

export default async function Summary() {
  const [identity, token] = await Promise.all([currentIdentity(), currentAccessToken()]);
  return (
    <main>
      <h1>Signed in as {identity?.name ?? identity?.id ?? "nobody"}</h1>
      <p data-testid="summary-token">{token ? "access token present" : "no access token"}</p>
    </main>
  );
}
