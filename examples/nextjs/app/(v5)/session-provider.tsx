"use client";
// next-auth/react's provider, pointed at authgate's endpoints.
import { SessionProvider } from "next-auth/react";

export default function AuthgateSessionProvider({ children }: { children: React.ReactNode }) {
  return <SessionProvider basePath="/api/auth">{children}</SessionProvider>;
}
