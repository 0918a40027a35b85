// Parse Mermaid text with the real parser (the `mermaid` package, no browser): exit 0 and print
// the diagram type when every file given parses; exit 1 with Mermaid's error otherwise.
//   node infra/mermaid/parse.mjs FILE...
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

// Mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom's, set up before the import.
const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

let failed = false;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(text);
    console.log(`${file}: ${result.diagramType}`);
  } catch (error) {
    console.error(`${file}: ${error.message ?? error}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
