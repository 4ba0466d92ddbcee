// How the TypeScript SDK test clients reach llmproc-mcp: "stdio" and a command line, or
// "http", a URL and an optional bearer token.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export async function connect(name, [kind, ...rest]) {
  let transport;
  if (kind === "stdio") {
    transport = new StdioClientTransport({ command: rest[0], args: rest.slice(1), stderr: "inherit" });
  } else {
    const headers = rest[1] ? { Authorization: `Bearer ${rest[1]}` } : {};
    transport = new StreamableHTTPClientTransport(new URL(rest[0]), { requestInit: { headers } });
  }
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  return client;
}
