// node wrap-core.js IN OUT: turn the Cubism 2.1 core, an ES module whose
// top-level names clash when loaded as <script type=module>, into a classic
// script that runs it in a function and sets window.<name> for every name of
// its final export {...} list (Live2D, Live2DModelWebGL, ...).
"use strict";
const fs = require("fs");

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error("usage: node wrap-core.js IN OUT");
  process.exit(2);
}
const text = fs.readFileSync(src, "utf8");
const m = /export\s*\{([^}]*)\}\s*;?\s*$/.exec(text);
if (!m) {
  console.error("wrap-core: no trailing export {...} in " + src);
  process.exit(1);
}
const names = m[1].split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
  const p = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(s);
  if (!p) {
    console.error("wrap-core: cannot read export entry " + JSON.stringify(s));
    process.exit(1);
  }
  return [p[1], p[2] || p[1]];
});
const body = text.slice(0, m.index);
const out = "(function () {\n" + body + "\n" +
  names.map(([local, exported]) => "window." + exported + " = " + local + ";").join("\n") +
  "\n})();\n";
fs.writeFileSync(dst + ".tmp", out);
fs.renameSync(dst + ".tmp", dst);
