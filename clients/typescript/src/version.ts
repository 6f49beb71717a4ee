/** The package's version (kept equal to `package.json`'s by the unit tests). */
export const VERSION = "0.2.0";
