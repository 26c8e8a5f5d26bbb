import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWS_REQUEST_HANDLER, sqsClientConfig } from "../../lib/aws-clients.ts";
import { startHangingServer, type HangingServer } from "../support/hanging-server.ts";

describe("the deployed functions' AWS clients", () => {
  let server: HangingServer;
  beforeAll(async () => {
    server = await startHangingServer();
  });
  afterAll(() => server.close());

  it("give up on an endpoint that never answers after requestTimeout, instead of only warning", async () => {
    const sqs = new SQSClient({
      ...sqsClientConfig(true),
      endpoint: server.url,
      region: "eu-west-1",
      maxAttempts: 1,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const started = Date.now();
    const call = sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: `${server.url}/000000000000/q`, AttributeNames: ["All"] }),
    );
    await expect(call).rejects.toThrow(/requestTimeout|timed? ?out/i);
    expect(Date.now() - started).toBeLessThan(AWS_REQUEST_HANDLER.requestTimeout + 2000);
    expect(server.requests).toBe(1);
    sqs.destroy();
  }, 15_000);
});
