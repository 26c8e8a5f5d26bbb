/**
 * Who is asking (lib/requester.ts): the real STS client over HTTP against a small STS stand-in on a
 * random 127.0.0.1 port, the Lambda function's name, and the OS user.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { userInfo } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsRequester, lambdaRequester, localRequester } from "../../lib/requester.ts";

const ARN = "arn:aws:sts::123456789012:assumed-role/ops/alice";
let server: Server;
let endpoint: string;
const bodies: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      bodies.push(body);
      response.writeHead(200, { "content-type": "text/xml" });
      response.end(
        `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${ARN}</Arn>` +
          "<UserId>AROAEXAMPLE:alice</UserId><Account>123456789012</Account></GetCallerIdentityResult>" +
          "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("requested_by", () => {
  it("is the caller's AWS principal ARN from STS GetCallerIdentity when talking to AWS", async () => {
    const arn = await awsRequester({
      region: "eu-west-1",
      endpoint,
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example" },
    });
    expect(arn).toBe(ARN);
    expect(bodies.at(-1)).toContain("Action=GetCallerIdentity");
  });

  it("is the function's name inside Lambda, and nothing outside it", () => {
    expect(lambdaRequester({ AWS_LAMBDA_FUNCTION_NAME: "scm-withdraw-prod-cleanup" })).toBe(
      "lambda:scm-withdraw-prod-cleanup",
    );
    expect(lambdaRequester({})).toBeUndefined();
  });

  it("is the OS user and host for the local pipeline", () => {
    expect(localRequester()).toMatch(new RegExp(`^local:${userInfo().username}@.+`));
  });
});
