/** Types for scripts/serverless-check-config.mjs, so tests can import it. */
export declare function configProblems(
  load: (env: Record<string, string>) => unknown,
  environment: Record<string, unknown>,
): string[];
export default class CheckConfigPlugin {
  constructor(serverless: unknown);
  hooks: Record<string, () => Promise<void>>;
  check(): Promise<void>;
}
