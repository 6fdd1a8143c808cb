/**
 * The shape of one entry of the option table (option-specs.ts): what a setting accepts, its
 * default and its one-line description. Resolution reads bounds and defaults from it, the config
 * file its keys and value checks, and `npm run docs:config` the configuration page.
 */

/** What a setting's value is, as resolution validates it. */
export type OptionKind =
  | 'integer'
  | 'integerOrNull'
  | 'integerOrInfinity'
  | 'string'
  | 'identifier'
  | 'path'
  | 'database'
  | 'connection'
  | 'strings'
  | 'stringsOrNull'
  | 'stringMapOrNull'
  | 'boolean'
  | 'logLevel'
  | 'logFormat'
  | 'mode'
  | 'userOrNull'
  | 'durations'
  | 'map'
  | 'list'
  | 'logger'
  | 'section'
  | 'sectionOrNull'
  | 'sectionOrFalse';

/** One setting inside a map (`retryBackoff.baseMs`) or at the top. */
export interface FieldSpec {
  readonly kind: OptionKind;
  /** Inclusive bounds of an integer. */
  readonly min?: number;
  readonly max?: number;
  /** The value used when the setting is left out; absent when it is computed (`defaultText` says how). */
  readonly default?: unknown;
  /** The default as the docs show it, where the value alone does not say it. */
  readonly defaultText?: string;
  /** One line for the configuration page. */
  readonly description: string;
  /** The settings of a map (`section`, `sectionOrNull`, `sectionOrFalse`) or of each entry of a `list`. */
  readonly fields?: Readonly<Record<string, FieldSpec>>;
}

/** A top-level setting. */
export interface OptionSpec extends FieldSpec {
  /** Its key in the config file; null: only `createRunner()` takes it. */
  readonly fileKey: string | null;
  /** The environment variable that overrides the file, if any. */
  readonly env?: string;
  /** The command-line flag that overrides both, if any. */
  readonly flag?: string;
}
