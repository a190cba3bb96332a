// Shared helpers for the Node benchmark scripts in bench/.
//
// The Node packages (@auth/core, oidc-provider) live in interop/node_modules
// (`npm ci --prefix interop`); bench/ has no package.json of its own, so the
// scripts resolve them from there.

import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const interopRequire = createRequire(new URL("../interop/package.json", import.meta.url));

/** `import()` of a package installed under interop/node_modules. */
export async function importInterop(specifier) {
  return import(pathToFileURL(interopRequire.resolve(specifier)).href);
}

/** The value at quantile `p` (0..1) of an ascending array (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.round((sorted.length - 1) * p)];
}
