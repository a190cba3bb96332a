import V4SessionProvider from "./session-provider";

export default function V4Layout({ children }: { children: React.ReactNode }) {
  return <V4SessionProvider>{children}</V4SessionProvider>;
}
