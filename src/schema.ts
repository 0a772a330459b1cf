import { SchemaError } from './errors.ts';

/**
 * The part of the Standard Schema v1 interface cloudmom uses (zod ≥ 3.24, valibot ≥ 1,
 * arktype implement it). Pass a schema per target: `add(target, handler, { schema })`.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * broker.add('orders', (p, order) => order.id, { schema: z.object({ id: z.string() }) });
 * ```
 */
export interface StandardSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    /** Validates a decoded body: the value it stands for, or its issues. */
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
  };
}

/** What a Standard Schema's `validate` answers: the value, or the issues. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<unknown>;
      }>;
    };

/** Validates a decoded body; resolves to the (possibly transformed) value or throws SchemaError. */
export async function validateBody(schema: StandardSchema, value: unknown): Promise<unknown> {
  const result = await schema['~standard'].validate(value);
  if (result.issues) {
    const issues = result.issues.map((i) => ({
      message: i.message,
      path: i.path?.map((p) => (typeof p === 'object' && p && 'key' in p ? p.key : p)),
    }));
    const summary = issues
      .slice(0, 3)
      .map((i) => (i.path?.length ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ');
    throw new SchemaError(`body does not match the schema: ${summary}`, issues);
  }
  return result.value;
}
