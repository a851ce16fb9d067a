// Writes schema/<name>.json. Run after changing a message schema; a test fails while they differ.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { schemaFileText, toJsonSchemas } from "./json-schema.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "schema");
mkdirSync(dir, { recursive: true });
for (const [name, schema] of Object.entries(toJsonSchemas())) {
  writeFileSync(join(dir, `${name}.json`), schemaFileText(schema));
  console.log(`wrote schema/${name}.json`);
}
