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
}

/**
 * Parses untrusted YAML narrowly: the core schema, unique keys, no tag beyond the core ones (so
 * no object is ever instantiated), and a cap on alias expansion. Both task options and config
 * files are read this way. The module is passed in so that a caller may load `yaml` lazily.
 */
export function parseCoreYaml(yaml: Pick<typeof Yaml, 'parseDocument' | 'visit' | 'isNode'>, text: string, params: CoreYamlParams): unknown {
  const doc = yaml.parseDocument(text, { schema: 'core', uniqueKeys: true, strict: true, prettyErrors: false });
  if (doc.errors.length > 0) throw params.fail(`malformed YAML: ${doc.errors[0]!.message}`);
  yaml.visit(doc, (_key, node) => {
    if (!yaml.isNode(node) || node.tag === undefined || coreTags.has(node.tag)) return;
    throw params.fail(params.refuseTag?.(node.tag) ?? `YAML tag ${node.tag} is not allowed`);
  });
  try {
    return doc.toJS({ maxAliasCount: params.maxAliasCount });
  } catch (error) {
    throw params.fail((error as Error).message);
  }
}
