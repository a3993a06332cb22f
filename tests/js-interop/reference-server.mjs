// The JS reference sync server, for the fan-out bench
// (`cargo bench -p flowkeep-sync-server --bench fanout`): what
// automerge-repo-sync-server runs — a Repo with the Node WebSocket server
// adapter that announces nothing (sharePolicy false) — without its file
// storage (kept in memory, so it does less work than the real one).
// Usage: node reference-server.mjs PORT  (prints "listening PORT" when ready)
import { Repo } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { WebSocketServer } from "ws"

const port = Number(process.argv[2] || 0)
const wss = new WebSocketServer({ host: "127.0.0.1", port })
wss.on("listening", () => console.log(`listening ${wss.address().port}`))
new Repo({
  network: [new WebSocketServerAdapter(wss)],
  peerId: "reference-sync-server",
  sharePolicy: async () => false,
})
process.on("SIGTERM", () => process.exit(0))
