"use client";
// A route handler called with fetch from the page: the browser sends the
// session cookie, authgate adds the headers (and answers 401 JSON itself
// when the session is gone: `/api/**` is an `api` route).
import { useState } from "react";

export default function ApiFetchPanel() {
  const [result, setResult] = useState("");
  async function call() {
    const res = await fetch("/api/me", { headers: { accept: "application/json" } });
    setResult(`${res.status} ${await res.text()}`);
  }
  return (
    <section>
      <h2>A route handler, called with fetch()</h2>
      <button data-testid="fetch-me" onClick={call}>
        GET /api/me
      </button>
      <pre data-testid="fetch-result">{result}</pre>
    </section>
  );
}
