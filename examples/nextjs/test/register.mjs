// `node --import ./test/register.mjs`: lets Node run the example's compiled route handlers
// as Next would bundle them — `@/...` from the compiled example, `@paystream/client` from
// the built client — with `@/lib/auth` replaced by `signed-in-user.mjs`, a test
// implementation of the `getSignedInUser()` seam.
import { register } from "node:module";
import { pathToFileURL } from "node:url";

register("./resolve-hooks.mjs", import.meta.url, {
  data: {
    build: pathToFileURL(`${process.env.PAYSTREAM_EXAMPLE_BUILD}/`).href,
    client: new URL("../../../clients/typescript/dist/esm/index.js", import.meta.url).href,
    auth: new URL("./signed-in-user.mjs", import.meta.url).href,
    example: new URL("../package.json", import.meta.url).href,
  },
});
