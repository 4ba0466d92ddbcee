// What a host built on the official TypeScript SDK sees of llmproc-mcp beyond tools: the
// resource a run result links, the resource and prompt lists, a prompt, and completion.
//
//   node ts_resources.mjs stdio python -m llmproc.cli.mcp --programs ../../../programs
//   node ts_resources.mjs http http://127.0.0.1:8000/mcp [TOKEN]
import { connect } from "./connect.mjs";

const client = await connect("llmproc-ts-resources", process.argv.slice(2));
const run = await client.callTool({ name: "run_scripted", arguments: { message: "Hello" } });
const link = run.content.find((c) => c.type === "resource_link");
const transcript = await client.readResource({ uri: link.uri });
const resources = await client.listResources();
const templates = await client.listResourceTemplates();
const prompts = await client.listPrompts();
const prompt = await client.getPrompt({ name: "scripted", arguments: { message: "Hi" } });
const completed = await client.complete({
  ref: { type: "ref/prompt", name: "spawn" },
  argument: { name: "program", value: "scr" },
});
console.log(
  JSON.stringify({
    capabilities: client.getServerCapabilities(),
    link: { uri: link.uri, mimeType: link.mimeType },
    transcript: transcript.contents[0].text,
    resources: resources.resources.map((r) => r.uri),
    templates: templates.resourceTemplates.map((t) => t.uriTemplate),
    prompts: prompts.prompts.map((p) => p.name),
    prompt: prompt.messages[0].content.text,
    completed: completed.completion.values,
  }),
);
await client.close();
