// Reads a JSON array of PowerShell scripts on stdin and prints a JSON
// array holding, for each script, every place where tree-sitter's
// PowerShell grammar finds a syntax error or had to invent a missing
// token. Run by ../../grammar_test.go; one run parses them all, since
// loading the grammar is most of the cost.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Language, Parser } from 'web-tree-sitter';

await Parser.init();
const wasm = fileURLToPath(new URL('node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm', import.meta.url));
const parser = new Parser();
parser.setLanguage(await Language.load(wasm));
const results = JSON.parse(readFileSync(0, 'utf8')).map((script) => {
  const errors = [];
  const visit = (node) => {
    if (node.isError || node.isMissing) {
      errors.push({ line: node.startPosition.row + 1, column: node.startPosition.column + 1, kind: node.type });
    }
    node.children.forEach(visit);
  };
  visit(parser.parse(script).rootNode);
  return errors;
});
console.log(JSON.stringify(results));
