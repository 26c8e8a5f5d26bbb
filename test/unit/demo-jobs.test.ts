import { describe, expect, it } from "vitest";
import { localRequester } from "../../lib/requester.ts";
import { demoJobs } from "../../local/pipeline.ts";
import { DEMO_INVALID_BODIES } from "../../local/demo-certificates.ts";

describe("npm start's demo jobs", () => {
  it("say who asked (the OS user), like every other producer's jobs", () => {
    const valid = demoJobs("demo-batch").filter((body) => !(DEMO_INVALID_BODIES as readonly string[]).includes(body));
    expect(valid.length).toBeGreaterThan(0);
    for (const body of valid)
      expect(JSON.parse(body)).toMatchObject({ requested_by: localRequester(), batch_id: "demo-batch" });
  });
});
