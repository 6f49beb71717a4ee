/**
 * Next's settings for this example inside the paystream repository.
 *
 * `@paystream/client` is a `file:` link to `../../clients/typescript` (so the example always
 * builds against the client of the same commit). Turbopack compiles only files under its
 * root, which it infers from the nearest lock file — this directory — so the linked package
 * reads as "Module not found". The root is therefore the repository's top, two levels up;
 * output file tracing (`next start`, standalone output) takes the same root, as Next
 * requires. A copy of the example in your own app installs the client from npm and needs
 * neither setting.
 */

import { fileURLToPath } from "node:url";

import type { NextConfig } from "next";

const repository = fileURLToPath(new URL("../..", import.meta.url));

const config: NextConfig = {
  turbopack: { root: repository },
  outputFileTracingRoot: repository,
};

export default config;
