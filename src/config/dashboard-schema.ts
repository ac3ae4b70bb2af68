/**
 * The `dashboard` section: the web dashboard served at `/dashboard`
 * (src/server/dashboard/). Signing in takes the master key; the session it
 * opens lives in the gateway's memory only.
 */
import { z } from 'zod';

export const dashboardSchema = z.strictObject({
  /** Serve `/dashboard` (it answers 404 when off; the admin API is unaffected). */
  enabled: z.boolean().default(true),
  /** How long a sign-in lasts, in seconds, from sign-in (not extended by use). */
  session_ttl_s: z
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(8 * 3_600),
  /**
   * Mark the session cookie `Secure`. The gateway speaks plain HTTP and cannot
   * tell whether a TLS-terminating proxy sits in front of it: turn this on
   * when browsers reach the dashboard over https (they then never send the
   * cookie over plain http).
   */
  secure_cookie: z.boolean().default(false),
});

export type DashboardConfig = z.infer<typeof dashboardSchema>;
