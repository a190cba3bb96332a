"use client";
// next-auth v4's client (installed as `next-auth-v4`), for apps still on v4:
// run authgate with `cookie_format = "next-auth-v4"`.
import { SessionProvider } from "next-auth-v4/react";

export default function V4SessionProvider({ children }: { children: React.ReactNode }) {
  return <SessionProvider basePath="/api/auth">{children}</SessionProvider>;
}
