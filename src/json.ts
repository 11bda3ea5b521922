// Shape checks for decoded JSON/YAML, shared by every mode that reads Kubernetes objects or config.

export type JsonObject = Record<string, unknown>;

/** A JSON object (a mapping): not null, not an array. */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
