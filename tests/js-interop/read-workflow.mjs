// Connects to a flowkeep sync server with the JS automerge-repo client (the
// device credential in the URL, as browsers must), opens the workspace root document,
// then the workflow document flowkeep wrote, and prints what it says as JSON.
// Usage: node read-workflow.mjs ws://127.0.0.1:PORT/sync TOKEN automerge:ROOT WORKFLOW_ID
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const [server, token, rootUrl, workflowId] = process.argv.slice(2)
const timeout = setTimeout(() => {
  console.error("timed out")
  process.exit(2)
}, 20000)

const repo = new Repo({ network: [new WebSocketClientAdapter(`${server}?token=${encodeURIComponent(token)}`)] })
try {
  const root = await repo.find(rootUrl)
  const rootDoc = root.doc()
  // flowkeep writes plain (last-writer-wins) strings, which Automerge JS
  // returns as ImmutableString objects: String() turns them into text.
  const workflowUrl = rootDoc.workflows[workflowId]
  if (!workflowUrl) throw new Error(`workflow ${workflowId} is not listed in the root document`)
  const handle = await repo.find(String(workflowUrl))
  const wf = handle.doc()
  const values = {}
  for (const [k, v] of Object.entries(wf.config.values)) values[k] = JSON.parse(String(v))
  console.log(JSON.stringify({ type: String(wf.type), id: String(wf.id), name: String(wf.name), values }))
  clearTimeout(timeout)
  process.exit(0)
} catch (e) {
  console.error(String(e))
  process.exit(1)
}
