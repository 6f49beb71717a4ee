/**
 * Web Crypto, wherever the code runs: the global `crypto` (Node >= 19, browsers, edge
 * runtimes), else Node 18's `node:crypto` `webcrypto`.
 *
 * The fallback import is hidden from bundlers (a computed specifier and `webpackIgnore`),
 * so an edge bundle never tries to resolve a Node built-in it does not need.
 */

import { PaystreamUsageError } from "./errors.js";

let nodeFallback: Promise<Crypto | undefined> | undefined;

async function importNodeWebCrypto(): Promise<Crypto | undefined> {
  const specifier = "node:crypto";
  try {
    const mod = (await import(/* webpackIgnore: true */ specifier)) as { webcrypto?: Crypto };
    return mod.webcrypto?.subtle ? mod.webcrypto : undefined;
  } catch {
    return undefined;
  }
}

export async function webCrypto(): Promise<Crypto> {
  const global = (globalThis as { crypto?: Crypto }).crypto;
  if (global?.subtle) {
    return global;
  }
  nodeFallback ??= importNodeWebCrypto();
  const fallback = await nodeFallback;
  if (fallback) {
    return fallback;
  }
  throw new PaystreamUsageError("no_web_crypto", "Web Crypto (crypto.subtle) is not available");
}
