// MCP Tasks through the official TypeScript SDK's client (`client.experimental.tasks`), as a
// host that speaks Tasks uses them. Each mode connects over Streamable HTTP with a bearer token
// (the token is the caller: a later connection with it sees the same tasks), does one thing,
// disconnects, and prints what it saw as one JSON object.
//
//   node ts_tasks.mjs start URL TOKEN PROGRAM N   spawn N runs of PROGRAM as tasks, print their ids
//   node ts_tasks.mjs collect URL TOKEN           list the caller's tasks, wait for each result
//   node ts_tasks.mjs stream URL TOKEN PROGRAM    one run through callToolStream, to its end
//   node ts_tasks.mjs cancel URL TOKEN TASK_ID    cancel a task, then read its status
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { connect } from "./connect.mjs";

const [mode, url, token, ...rest] = process.argv.slice(2);
const client = await connect("llmproc-ts-tasks", ["http", url, token]);
const tasks = client.experimental.tasks;
const tools = await client.listTools(); // the SDK learns which tools take tasks from the listing
const out = { capabilities: client.getServerCapabilities().tasks ?? null };
out.execution = Object.fromEntries(tools.tools.filter((t) => t.execution).map((t) => [t.name, t.execution]));

async function firstOf(stream) {
  for await (const message of stream) return message; // taskCreated: the handle, at once
  return null;
}

if (mode === "start") {
  const [program, count] = rest;
  const created = await Promise.all(
    Array.from({ length: Number(count) }, (_, i) =>
      firstOf(
        tasks.callToolStream(
          { name: "spawn", arguments: { program, message: `hold ${i}` } }, // a process each: in parallel
          undefined,
          { task: { ttl: 600000 } },
        ),
      ),
    ),
  );
  out.created = created.map((m) => ({ type: m.type, taskId: m.task?.taskId, status: m.task?.status }));
} else if (mode === "collect") {
  const listed = await tasks.listTasks();
  out.listed = listed.tasks.map((t) => ({ taskId: t.taskId, status: t.status }));
  out.results = {};
  for (const t of listed.tasks) {
    const result = await tasks.getTaskResult(t.taskId, CallToolResultSchema);
    out.results[t.taskId] = { text: result.structuredContent?.text, isError: result.isError ?? false };
  }
} else if (mode === "stream") {
  const seen = [];
  for await (const message of tasks.callToolStream({ name: `run_${rest[0]}`, arguments: { message: "hi" } })) {
    seen.push(message.type === "result" ? { type: "result", text: message.result.structuredContent?.text }
      : message.type === "error" ? { type: "error", message: message.error.message }
      : { type: message.type, status: message.task.status });
  }
  out.seen = seen;
} else if (mode === "cancel") {
  const cancelled = await tasks.cancelTask(rest[0]);
  out.cancelled = { status: cancelled.status };
  out.after = { status: (await tasks.getTask(rest[0])).status };
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify(out));
await client.close();
