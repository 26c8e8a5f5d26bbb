/**
 * Every secret the test suite uses. `secret-guard.ts` fails a test file if any of these ever
 * appears in what the process wrote to stdout or stderr.
 */
export const TEST_TOKEN = "MIITestToken-0123456789abcdefghijklmnopqrstuvwxyz-ORIGINAL";
export const ROTATED_TOKEN = "MIITestToken-9876543210zyxwvutsrqponmlkjihgfedcba-ROTATED";
export const IAM_PASSWORD = "Sup3r-Secret-IAM-Passw0rd!";
/** An AK/SK pair; only the secret key is secret (the access key travels in every Authorization header). */
export const TEST_AKSK = {
  accessKey: "HPUATESTACCESSKEY001",
  secretKey: "TestSecretKey/0123+abcdefghijklmnopqrstuvwx",
  domainId: "0970dd7a1300f5672ff2c003c60ae115",
};

/** Secrets registered at run time (e.g. IAM tokens the simulator issued). */
export const runtimeSecrets = new Set<string>();

export function allSecrets(): string[] {
  return [TEST_TOKEN, ROTATED_TOKEN, IAM_PASSWORD, TEST_AKSK.secretKey, ...runtimeSecrets];
}

/*
 * Deliberately written apart from `lib/redact.ts` (the code it checks): the same bug in both would
 * otherwise hide itself.
 */
/** The shortest fragment of a secret that counts as a leak. */
export const FRAGMENT = 12;

/** The first fragment of a secret (in one of the forms it can be echoed in) found in `output`, if any. */
export function findSecretFragment(output: string, secrets: readonly string[]): string | undefined {
  const fragments = new Set<string>();
  for (const secret of secrets) {
    const html = secret.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const form = new URLSearchParams({ s: secret }).toString().slice(2);
    const forms = [secret, encodeURIComponent(secret), form, JSON.stringify(secret).slice(1, -1), html];
    for (const form of forms.map((f) => f.toLowerCase())) {
      if (form.length < FRAGMENT) fragments.add(form);
      for (let at = 0; at + FRAGMENT <= form.length; at += 1) fragments.add(form.slice(at, at + FRAGMENT));
    }
  }
  const haystack = output.toLowerCase();
  const short = [...fragments].filter((f) => f.length < FRAGMENT);
  const found = short.find((f) => haystack.includes(f));
  if (found !== undefined) return found;
  for (let at = 0; at + FRAGMENT <= haystack.length; at += 1) {
    const window = haystack.slice(at, at + FRAGMENT);
    if (fragments.has(window)) return window;
  }
  return undefined;
}
