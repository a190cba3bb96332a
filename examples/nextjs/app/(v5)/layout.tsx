import AuthgateSessionProvider from "./session-provider";

export default function V5Layout({ children }: { children: React.ReactNode }) {
  return <AuthgateSessionProvider>{children}</AuthgateSessionProvider>;
}
