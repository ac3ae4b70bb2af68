/** How the admin API reads a JSON body: by a zod schema, a 400 naming the first field at fault. */
import type { z } from 'zod';
import { GatewayError } from '../../core/errors.ts';

export function parsedBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.join('.') || 'body';
  throw new GatewayError('invalid_request', `${param}: ${issue.message}`, { param });
}
