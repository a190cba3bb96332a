import type { Metadata } from "next";
import Link from "next/link";
import "./globals.css";

export const metadata: Metadata = {
  title: "authgate × Next.js",
  description: "A Next.js App Router app behind authgate",
};

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>
        <nav>
          <Link href="/">Home</Link>
          <Link href="/protected" data-testid="nav-protected">Protected</Link>
          <Link href="/v4">next-auth v4 client</Link>
        </nav>
        {children}
      </body>
    </html>
  );
}
