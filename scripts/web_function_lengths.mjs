// Reports the longest functions of the web app (app/web, vendored code excluded) and
// fails when one is longer than the house limit (STYLE.md, "Web app": about 60 lines).
// Parses with the TypeScript compiler API (the pinned devDependency), so nested
// functions, arrow functions and methods are all measured, each over its full span.
//
// Usage: node scripts/web_function_lengths.mjs [--max N] [--top N]

import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const ROOT = new URL("..", import.meta.url).pathname;
const STATIC = join(ROOT, "app/web");
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MAX = option("--max", 60);
const TOP = option("--top", 5);

function* jsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "vendor") yield* jsFiles(path);
    else if (entry.isFile() && entry.name.endsWith(".js")) yield path;
  }
}

function nameOf(node, source) {
  if (node.name) return node.name.getText(source);
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent))) {
    return parent.name.getText(source);
  }
  return "(anonymous)";
}

/** Every function-like node of a file as {file, name, line, lines}. */
export function functionLengths(path) {
  const text = readFileSync(path, "utf8");
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const out = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file: relative(ROOT, path), name: nameOf(node, source), line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

const all = [...jsFiles(STATIC)].flatMap(functionLengths).sort((a, b) => b.lines - a.lines);
for (const f of all.slice(0, TOP)) console.log(`${String(f.lines).padStart(4)} lines  ${f.file}:${f.line}  ${f.name}`);
const over = all.filter((f) => f.lines > MAX);
console.log(`${all.length} functions; longest ${all[0]?.lines ?? 0} lines; limit ${MAX}`);
if (over.length) {
  console.error(`${over.length} function(s) longer than ${MAX} lines`);
  process.exit(1);
}
