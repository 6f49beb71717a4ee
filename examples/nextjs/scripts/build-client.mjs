// `npm run build`'s first step (`prebuild`): the example links `@paystream/client` from
// ../../clients/typescript (`file:`), which npm links but never builds. This builds it —
// installing its one dev dependency (TypeScript) first when missing — unless its `dist/` is
// newer than every source file, so a build beside a fresh client build (the tests) leaves
// that build alone.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const client = fileURLToPath(new URL("../../../clients/typescript/", import.meta.url));
const built = [join(client, "dist", "esm", "index.js"), join(client, "dist", "cjs", "index.js")];

function newestSource() {
  const files = readdirSync(join(client, "src")).map((name) => join(client, "src", name));
  files.push(join(client, "package.json"), join(client, "tsconfig.json"), join(client, "tsconfig.cjs.json"));
  return Math.max(...files.map((file) => statSync(file).mtimeMs));
}

function upToDate() {
  return built.every((file) => existsSync(file) && statSync(file).mtimeMs >= newestSource());
}

if (upToDate()) {
  console.log("@paystream/client: dist/ is up to date");
} else {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  if (!existsSync(join(client, "node_modules", "typescript"))) {
    execFileSync(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: client, stdio: "inherit" });
  }
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: client, stdio: "inherit" });
  console.log("@paystream/client: built");
}
