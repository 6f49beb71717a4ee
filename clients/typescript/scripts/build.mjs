// `npm run build`: the ESM build (dist/esm, `import`) and the CommonJS build (dist/cjs,
// `require`) from the same sources, each with its .d.ts, and a package.json in each
// directory naming its module type (so Node reads dist/cjs/*.js as CommonJS).
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(join(root, "dist"), { recursive: true, force: true });
for (const [config, type] of [
  ["tsconfig.json", "module"],
  ["tsconfig.cjs.json", "commonjs"],
]) {
  execFileSync(process.execPath, [tsc, "-p", config], { cwd: root, stdio: "inherit" });
  const out = join(root, "dist", type === "module" ? "esm" : "cjs");
  writeFileSync(join(out, "package.json"), `${JSON.stringify({ type })}\n`);
}
