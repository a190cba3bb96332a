import SessionPanel from "./session-panel";

export default function Home() {
  return (
    <main>
      <h1>authgate × Next.js</h1>
      <p className="muted">
        A public page. The panel below is unchanged <code>next-auth/react</code> client code, talking to authgate at{" "}
        <code>/api/auth</code>.
      </p>
      <SessionPanel />
    </main>
  );
}
