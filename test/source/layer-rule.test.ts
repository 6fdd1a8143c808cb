import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The import rule eslint.config.js builds from ARCHITECTURE.md's layers, on imports written as a
// file of that folder would write them: the rule matches the import's text, so a pattern that
// stops matching would pass every file without a word.
const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function problems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  return (result?.messages ?? []).map((message) => `${message.ruleId}: ${message.message}`);
}

describe('the layer rule', () => {
  it('refuses an import up or sideways', async () => {
    const cases: [file: string, specifier: string][] = [
      ['src/pool/probe.ts', '../store/database.js'],
      ['src/pool/probe.ts', './runtime/run-task.js'],
      ['src/pool/runtime/probe.ts', '../../store/database.js'],
      ['src/pool/runtime/probe.ts', '../../config/runner-config.js'],
      ['src/pool/runtime/probe.ts', 'pg'],
      ['src/pool/runtime/probe.ts', 'yaml'],
      ['src/store/probe.ts', '../launcher/runner.js'],
      ['src/shared/probe.ts', '../config/duration.js'],
      ['src/launcher/probe.ts', '../dashboard/dashboard-server.js'],
      ['src/launcher/probe.ts', '../standalone/pidfile.js'],
      ['src/dashboard/probe.ts', '../metrics/metrics.js'],
      ['src/metrics/probe.ts', '../standalone/pidfile.js'],
      ['src/standalone/probe.ts', '../cli/main.js'],
    ];
    for (const [file, specifier] of cases) {
      expect(await problems(file, `import '${specifier}';\n`), `${file} importing ${specifier}`).toEqual([
        expect.stringMatching(/^no-restricted-imports: /),
      ]);
    }
  });

  it('lets an import point down', async () => {
    const cases: [file: string, specifier: string][] = [
      ['src/pool/probe.ts', '../config/confinement.js'],
      ['src/pool/runtime/probe.ts', '../protocol.js'],
      ['src/pool/runtime/probe.ts', '../../tasks/load-task.js'],
      ['src/client/probe.ts', '../store/insert-requests.js'],
      ['src/dashboard/probe.ts', '../launcher/lifecycle-commands.js'],
      ['src/standalone/probe.ts', '../dashboard/dashboard-server.js'],
      ['src/cli/probe.ts', '../standalone/standalone-launcher.js'],
    ];
    for (const [file, specifier] of cases) {
      expect(await problems(file, `import '${specifier}';\n`), `${file} importing ${specifier}`).toEqual([]);
    }
  });

  it('keeps library code off the console and off process', async () => {
    expect(await problems('src/store/probe.ts', "console.log('x');\n")).toEqual([
      expect.stringMatching(/^no-console: /),
    ]);
    expect(await problems('src/launcher/probe.ts', "process.on('SIGTERM', () => {});\nprocess.exit(1);\n")).toEqual([
      expect.stringMatching(/^no-restricted-syntax: /),
      expect.stringMatching(/^no-restricted-properties: /),
    ]);
    expect(await problems('src/cli/probe.ts', "process.on('SIGTERM', () => {});\nprocess.exit(1);\n")).toEqual([]);
  });
});
