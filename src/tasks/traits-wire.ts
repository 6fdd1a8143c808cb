/**
 * What the traits inspector thread tells the launcher about one task class. The values come
 * from user code, so they travel as plain descriptions and the launcher validates them.
 */

/** A static as found: a primitive as it is, `null` when not declared, anything else by its type. */
export type DeclaredValue = string | number | boolean | null | { typeOf: string };

export type TraitsMessage =
  | {
      type: 'declared';
      mode: DeclaredValue;
      timeoutMs: DeclaredValue;
      /** `static limits` and `static permissions` as plain data (validated by the launcher); null: not declared. */
      limits: unknown;
      permissions: unknown;
    }
  /** `code`: the error's own code when it has one (`ERR_UNKNOWN_FILE_EXTENSION`: no loader for the file here). */
  | { type: 'load-error'; text: string; code?: string };

/** Describes one static so that it can cross the thread boundary whatever it holds. */
export function describeDeclared(value: unknown): DeclaredValue {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return { typeOf: typeof value };
}

/** A declared object as plain data (what JSON keeps of it), so it crosses the boundary inert. */
export function describePlain(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object') return describeDeclared(value);
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch {
    return { typeOf: 'object that cannot be read as plain data' };
  }
}

function isDeclaredValue(value: unknown): value is DeclaredValue {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return true;
  return typeof value === 'object' && typeof (value as { typeOf?: unknown }).typeOf === 'string';
}

/** Decodes the inspector's message; null for anything else. */
export function decodeTraitsMessage(raw: unknown): TraitsMessage | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const message = raw as Record<string, unknown>;
  if (message.type === 'declared' && isDeclaredValue(message.mode) && isDeclaredValue(message.timeoutMs)) {
    return {
      type: 'declared',
      mode: message.mode,
      timeoutMs: message.timeoutMs,
      limits: message.limits ?? null,
      permissions: message.permissions ?? null,
    };
  }
  if (message.type === 'load-error' && typeof message.text === 'string') {
    return {
      type: 'load-error',
      text: message.text,
      ...(typeof message.code === 'string' ? { code: message.code } : {}),
    };
  }
  return null;
}
