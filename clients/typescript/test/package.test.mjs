// The package as npm publishes it: Apache-2.0, public, Node >= 20, and both builds reached
// through `exports` — `import` gets the ES module build, `require` the CommonJS build, each
// with its types, and both are the same API. `npm pack --dry-run` lists what would ship.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, test } from "node:test";

import * as esm from "@paystream/client";

const pkgUrl = new URL("../package.json", import.meta.url);
const pkg = JSON.parse(readFileSync(pkgUrl, "utf8"));
const require = createRequire(import.meta.url);

describe("package.json", () => {
  test("is publishable: Apache-2.0, not private, public access, Node >= 20", () => {
    assert.equal(pkg.license, "Apache-2.0");
    assert.equal(pkg.private, undefined);
    assert.equal(pkg.publishConfig.access, "public");
    assert.equal(pkg.engines.node, ">=20");
    assert.ok(pkg.files.includes("LICENSE"));
    assert.match(readFileSync(new URL("../LICENSE", import.meta.url), "utf8"), /Apache License\s+Version 2\.0/);
  });

  test("exports has import and require conditions, types first in each", () => {
    const root = pkg.exports["."];
    assert.deepEqual(Object.keys(root), ["import", "require"]);
    for (const condition of ["import", "require"]) {
      assert.deepEqual(Object.keys(root[condition]), ["types", "default"]);
    }
  });
});

describe("the two builds", () => {
  test("require() resolves to the CommonJS build, import to the ES module build", () => {
    assert.match(require.resolve("@paystream/client"), /dist\/cjs\/index\.js$/);
    assert.match(import.meta.resolve("@paystream/client"), /dist\/esm\/index\.js$/);
  });

  test("both export the same names, and the CommonJS one works on its own", async () => {
    const cjs = require("@paystream/client");
    assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).sort());
    assert.equal(cjs.VERSION, pkg.version);
    const header = await cjs.signAppEvent("{}", "s", { timestamp: 1 });
    assert.equal(header, await esm.signAppEvent("{}", "s", { timestamp: 1 }));
    assert.throws(() => new cjs.Paystream({}), cjs.PaystreamUsageError);
  });

  test("a CommonJS program outside ESM loads it with require()", () => {
    const script = `const { Paystream, VERSION } = require(${JSON.stringify(require.resolve("@paystream/client"))});
      process.stdout.write(typeof Paystream + " " + VERSION);`;
    const out = execFileSync(process.execPath, ["-e", script]).toString();
    assert.equal(out, `function ${pkg.version}`);
  });

  test("npm pack ships both builds with their types, the README and the LICENSE, no sources", () => {
    const npm = process.env.npm_execpath ?? "npm";
    const args = ["pack", "--dry-run", "--json", "--ignore-scripts"];
    const out = npm.endsWith(".js")
      ? execFileSync(process.execPath, [npm, ...args], { cwd: new URL("..", import.meta.url) })
      : execFileSync(npm, args, { cwd: new URL("..", import.meta.url) });
    const files = JSON.parse(out.toString())[0].files.map((f) => f.path);
    for (const wanted of [
      "LICENSE",
      "README.md",
      "package.json",
      "dist/esm/index.js",
      "dist/esm/index.d.ts",
      "dist/esm/package.json",
      "dist/cjs/index.js",
      "dist/cjs/index.d.ts",
      "dist/cjs/package.json",
    ]) {
      assert.ok(files.includes(wanted), `${wanted} missing from ${files.join(", ")}`);
    }
    assert.equal(files.filter((f) => f.startsWith("src/") || f.startsWith("test/")).length, 0);
  });
});
