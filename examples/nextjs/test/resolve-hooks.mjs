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
  return next(specifier, context);
}
