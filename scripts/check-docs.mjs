#!/usr/bin/env node
// Checks the docs (README.md, ARCHITECTURE.md, docs/*.md) against the repository:
//  1. every relative link resolves to a file or folder, and a `#anchor` to a heading of that file;
//  2. every ```ts / ```typescript block type-checks against the built package: the blocks are
//     written to tmp/doc-examples/ with a tsconfig whose paths map `cw-task-runner` and
//     `cw-task-runner/task` to this repository's dist/, and the repository's tsc checks them.
// A block opts out with the info string ```ts ignore, for a deliberate fragment only.
// Run it after `npm run build` (`npm run check:docs`); it exits 1 on any failure.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'tmp', 'doc-examples');

function docFiles() {
  const docs = readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => path.join('docs', name));
  return ['README.md', 'ARCHITECTURE.md', ...docs].filter((file) => existsSync(path.join(root, file)));
}

/** The lines of a Markdown file, split into prose lines and fenced code blocks. */
function parse(text) {
  const lines = text.split('\n');
  const prose = [];
  const blocks = [];
  let open = null;
  lines.forEach((line, index) => {
    const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(line);
    if (open === null) {
      if (fence) open = { marker: fence[2], info: fence[3].trim(), startLine: index + 2, body: [] };
      else prose.push({ line, number: index + 1 });
      return;
    }
    const closes = fence && fence[2][0] === open.marker[0] && fence[2].length >= open.marker.length;
    if (closes && fence[3].trim() === '') {
      blocks.push(open);
      open = null;
    } else {
      open.body.push(line);
    }
  });
  if (open !== null) blocks.push(open);
  return { prose, blocks };
}

/** A heading's anchor as GitHub makes it: text only, lower case, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map();

/** Anchors of a Markdown file: its headings (duplicates numbered as GitHub does) and explicit ids. */
function anchorsOf(file) {
  if (anchorCache.has(file)) return anchorCache.get(file);
  const { prose } = parse(readFileSync(file, 'utf8'));
  const anchors = new Set();
  const seen = new Map();
  for (const { line } of prose) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const base = slug(heading[1]);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1]);
  }
  anchorCache.set(file, anchors);
  return anchors;
}

/** Link targets in a prose line: inline links and images, and reference definitions; code spans skipped. */
function linkTargets(line) {
  const bare = line.replace(/`[^`]*`/g, '');
  const targets = [];
  for (const match of bare.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(match[1]);
  const definition = /^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(bare);
  if (definition) targets.push(definition[1]);
  return targets;
}

function checkLinks(files) {
  const problems = [];
  let count = 0;
  for (const file of files) {
    const absolute = path.join(root, file);
    const { prose } = parse(readFileSync(absolute, 'utf8'));
    for (const { line, number } of prose) {
      for (const target of linkTargets(line)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: and the like
        count += 1;
        const [rawPath, anchor] = target.split('#', 2);
        const targetPath =
          rawPath === '' ? absolute : path.resolve(path.dirname(absolute), decodeURIComponent(rawPath));
        const where = `${file}:${number}`;
        if (!targetPath.startsWith(root)) {
          problems.push(`${where}: ${target} points outside the repository`);
        } else if (!existsSync(targetPath)) {
          problems.push(`${where}: ${target}: no such file`);
        } else if (anchor !== undefined && anchor !== '') {
          if (!targetPath.endsWith('.md')) problems.push(`${where}: ${target}: an anchor in a non-Markdown file`);
          else if (!anchorsOf(targetPath).has(anchor)) problems.push(`${where}: ${target}: no heading of that anchor`);
        }
      }
    }
  }
  return { problems, count };
}

function typeCheck(files) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const sources = new Map();
  let ignored = 0;
  for (const file of files) {
    const { blocks } = parse(readFileSync(path.join(root, file), 'utf8'));
    for (const block of blocks) {
      const [language, ...flags] = block.info.split(/\s+/);
      if (language !== 'ts' && language !== 'typescript') continue;
      if (flags.includes('ignore')) {
        ignored += 1;
        continue;
      }
      const name = `${file.replace(/[\\/]/g, '__').replace(/\.md$/, '')}-${block.startLine}.ts`;
      // `export {}` makes every block a module of its own: top-level await, no shared names.
      writeFileSync(path.join(outDir, name), `${block.body.join('\n')}\nexport {};\n`);
      sources.set(name, { file, startLine: block.startLine });
    }
  }
  const dist = path.relative(outDir, path.join(root, 'dist'));
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: ['node'],
      paths: {
        'cw-task-runner': [`${dist}/index.d.ts`],
        'cw-task-runner/task': [`${dist}/tasks/task.d.ts`],
      },
    },
    files: [...sources.keys()],
  };
  writeFileSync(path.join(outDir, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
  if (sources.size === 0) return { problems: [], count: 0, ignored };
  // The compiler the build uses (`npx tsc`): TypeScript 7 is installed as @typescript/native, since
  // `typescript` is the version-6 API that typescript-eslint loads. Its bin sits beside its package.json.
  const typescriptDir = path.dirname(createRequire(import.meta.url).resolve('@typescript/native/package.json'));
  const tsc = path.join(typescriptDir, 'bin', 'tsc');
  let output = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(outDir, 'tsconfig.json'), '--pretty', 'false'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    output = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    if (output.trim() === '') output = String(error);
  }
  // tsc names a block's file and line; say the Markdown file and line instead.
  const problems = output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const match = /^(?:.*[\\/])?([^\\/()]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line);
      const source = match ? sources.get(match[1]) : undefined;
      if (!source) return line;
      return `${source.file}:${source.startLine + Number(match[2]) - 1}:${match[3]}: ${match[4]}`;
    });
  return { problems, count: sources.size, ignored };
}

if (!existsSync(path.join(root, 'dist', 'index.d.ts'))) {
  console.error('check-docs: dist/ is missing: run `npm run build` first');
  process.exit(1);
}
const files = docFiles();
const links = checkLinks(files);
const blocks = typeCheck(files);
for (const problem of [...links.problems, ...blocks.problems]) console.error(problem);
const failed = links.problems.length > 0 || blocks.problems.length > 0;
(failed ? console.error : console.log)(
  `check-docs: ${files.length} files, ${links.count} relative links (${links.problems.length} broken), ` +
    `${blocks.count} TypeScript blocks type-checked (${blocks.ignored} marked ignore)${failed ? ': FAILED' : ': ok'}`,
);
process.exit(failed ? 1 : 0);
