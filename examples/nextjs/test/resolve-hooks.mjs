// Module resolution hooks for register.mjs (they run on Node's loader thread).
let urls;

export function initialize(data) {
  urls = data;
}

export async function resolve(specifier, context, next) {
  if (specifier === "@/lib/auth") {
    return { url: urls.auth, shortCircuit: true };
  }
  if (specifier.startsWith("@/")) {
    return { url: new URL(`${specifier.slice(2)}.js`, urls.build).href, shortCircuit: true };
  }
  if (specifier === "@paystream/client") {
    return { url: urls.client, shortCircuit: true };
  }
  if (specifier === "server-only") {
    // what Next's server bundles get (the package's `react-server` condition): nothing
    return next(specifier, { ...context, conditions: ["react-server", ...context.conditions], parentURL: urls.example });
  }
  if (specifier.startsWith("next/")) {
    // the compiled example lives in a temporary directory: its packages are the example's;
    // `next` has no `exports` map, so Node's ESM resolver wants the file (`next/cache.js`)
    return next(`${specifier}.js`, { ...context, parentURL: urls.example });
  }
  return next(specifier, context);
}
