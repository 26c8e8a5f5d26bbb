/**
 * Every secret the test suite uses. `secret-guard.ts` fails a test file if any of these ever
 * appears in what the process wrote to stdout or stderr.
 */
export const TEST_TOKEN = "MIITestToken-0123456789abcdefghijklmnopqrstuvwxyz-ORIGINAL";
export const ROTATED_TOKEN = "MIITestToken-9876543210zyxwvutsrqponmlkjihgfedcba-ROTATED";
export const IAM_PASSWORD = "Sup3r-Secret-IAM-Passw0rd!";

/** Secrets registered at run time (e.g. IAM tokens the simulator issued). */
export const runtimeSecrets = new Set<string>();

export function allSecrets(): string[] {
  return [TEST_TOKEN, ROTATED_TOKEN, IAM_PASSWORD, ...runtimeSecrets];
}
