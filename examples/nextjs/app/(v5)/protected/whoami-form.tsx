"use client";
import { useActionState } from "react";
import { whoAmI } from "./actions";

export default function WhoAmIForm() {
  const [result, action, pending] = useActionState(whoAmI, null);
  return (
    <section>
      <h2>A server action</h2>
      <form action={action}>
        <button type="submit" data-testid="whoami" disabled={pending}>
          Ask the server who I am
        </button>
      </form>
      <pre data-testid="whoami-result">{result ? JSON.stringify(result) : ""}</pre>
    </section>
  );
}
