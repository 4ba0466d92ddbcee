// A client on the official TypeScript SDK, as third-party hosts use it. It connects to
// llmproc-mcp (stdio: the command line after "stdio"; http: a URL and an optional token),
// lists the tools, runs a program twice, and prints what it saw as one JSON object.
//
//   node ts_client.mjs stdio python -m llmproc.cli.mcp --programs ../../../programs
//   node ts_client.mjs http http://127.0.0.1:8000/mcp [TOKEN]
import { connect } from "./connect.mjs";

const client = await connect("llmproc-ts-test", process.argv.slice(2));
const tools = await client.listTools();
const first = await client.callTool({ name: "run_scripted", arguments: { message: "Hello" } });
const second = await client.callTool({
  name: "run_scripted",
  arguments: { message: "Again", process_id: first.structuredContent.process_id },
});
const bad = await client.callTool({ name: "run_scripted", arguments: { message: "x", process_id: "nope" } });
console.log(
  JSON.stringify({
    tools: tools.tools.map((t) => t.name),
    outputSchema: tools.tools.find((t) => t.name === "run_scripted").outputSchema,
    first: { text: first.content[0].text, structured: first.structuredContent },
    second: { text: second.content[0].text, process_id: second.structuredContent.process_id },
    bad: { isError: bad.isError, text: bad.content[0].text },
  }),
);
await client.close();
