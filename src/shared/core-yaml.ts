import type * as Yaml from 'yaml';

/** The tags of YAML's core schema: plain data only, nothing that builds an object. */
const coreTags: ReadonlySet<string> = new Set(
  ['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((name) => `tag:yaml.org,2002:${name}`),
);

export interface CoreYamlParams {
  /** Aliases expanded at most (a "billion laughs" document is refused past it). */
  maxAliasCount: number;
  /** The error to throw for a malformed document or a refused tag, given what is wrong. */
  fail(message: string): Error;
  /** Words for a tag outside the core schema; default "YAML tag <tag> is not allowed". */
  refuseTag?(tag: string): string;
  /** Integers beyond 2^53 as the exact BigInt (task options); default false: numbers (config files). */
  exactIntegers?: boolean;
}

/** How the core schema writes an integer (decimal, `0o` octal, `0x` hex), as BigInt reads it too. */
const integerSource = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;

/**
 * An integer the core schema read past 2^53, as the exact BigInt its text says: a double would
 * round it without a word (`12345678901234567890` becomes `12345678901234567000`), and a Ruby
 * application writes such integers as plain digits. Null for every other scalar.
 */
function exactInteger(node: Yaml.Scalar): bigint | null {
  if (typeof node.value !== 'number' || !Number.isInteger(node.value) || Number.isSafeInteger(node.value)) return null;
  if (node.tag === 'tag:yaml.org,2002:float') return null; // `!!float 1234…` asked for a double
  const source = node.source;
  return typeof source === 'string' && integerSource.test(source) ? BigInt(source) : null;
}

/**
 * Parses untrusted YAML narrowly: the core schema, unique keys, no tag beyond the core ones (so
 * no object is ever instantiated), and a cap on alias expansion; with `exactIntegers`, integers
 * beyond 2^53 come back as BigInt. Both task options and config files are read this way. The
 * module is passed in so that a caller may load `yaml` lazily.
 */
export function parseCoreYaml(
  yaml: Pick<typeof Yaml, 'parseDocument' | 'visit' | 'isNode' | 'isScalar'>,
  text: string,
  params: CoreYamlParams,
): unknown {
  const doc = yaml.parseDocument(text, { schema: 'core', uniqueKeys: true, strict: true, prettyErrors: false });
  if (doc.errors.length > 0) throw params.fail(`malformed YAML: ${doc.errors[0]!.message}`);
  yaml.visit(doc, (_key, node) => {
    if (!yaml.isNode(node)) return;
    if (node.tag !== undefined && !coreTags.has(node.tag))
      throw params.fail(params.refuseTag?.(node.tag) ?? `YAML tag ${node.tag} is not allowed`);
    if (params.exactIntegers === true && yaml.isScalar(node)) {
      const exact = exactInteger(node);
      if (exact !== null) node.value = exact;
    }
  });
  try {
    return doc.toJS({ maxAliasCount: params.maxAliasCount });
  } catch (error) {
    throw params.fail((error as Error).message);
  }
}
