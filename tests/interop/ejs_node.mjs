// A small ethereumjs devp2p node driven over stdin/stdout for gethp2p's interop tests.
//
// Start: node ejs_node.mjs --key <hex> [--udp <port>] [--tcp <port>] [--host 127.0.0.1]
// It prints one JSON object per line on stdout: {"event": "...", ...}. The first is
// {"event": "ready", "id": <node id hex>, "udp": <port>, "tcp": <port>}.
// It reads one JSON command per line on stdin:
//   {"cmd": "bootstrap", "address", "udpPort", "tcpPort"}   discv4 ping + findnode to a node
//   {"cmd": "dpt_peers"}                                    -> {"event": "dpt_peers", "peers": [...]}
//   {"cmd": "connect", "id", "address", "tcpPort"}          open an RLPx session
//   {"cmd": "send", "id", "code", "payload": [hex...]}      send a chat message (RLP list of byte strings)
//   {"cmd": "disconnect", "id", "reason"}                   disconnect a peer with a reason number
//   {"cmd": "quit"}
// Events: dpt_peer_added, peer_added (with hello info), message, peer_removed (reason, disconnectWe), error.
// Only loopback addresses are used by the tests that drive it.
import * as readline from 'node:readline'

import { Common, Mainnet } from '@ethereumjs/common'
import { DPT, RLPx, SNAP } from '@ethereumjs/devp2p'
import { RLP } from '@ethereumjs/rlp'
import { bytesToHex, hexToBytes } from '@ethereumjs/util'
import * as snappy from 'snappyjs'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
const host = args.host ?? '127.0.0.1'
const key = hexToBytes('0x' + args.key)
const udpPort = Number(args.udp ?? 0)
const tcpPort = Number(args.tcp ?? 0)

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const hex = (b) => bytesToHex(b).slice(2)

// The chat protocol of gethp2p's p2pnode: version 1, one message (code 0) carrying [text].
// The package does not export its Protocol base class; SNAP is the exported subclass that
// expects no STATUS message, so CHAT builds on it and replaces the message handling.
class CHAT extends SNAP {
  constructor(version, peer, send) {
    super(version, peer, send)
  }
  static chat = { name: 'chat', version: 1, length: 1, constructor: CHAT }
  _handleMessage(code, data) {
    this.events.emit('message', code, RLP.decode(data))
  }
  sendMessage(code, payload) {
    // In ethereumjs the sub-protocol compresses (devp2p v5 snappy), not the peer.
    let data = RLP.encode(payload)
    const version = this._peer['_hello']?.protocolVersion
    if (version !== undefined && version >= 5) data = snappy.compress(data)
    this._send(code, data)
  }
}

const common = new Common({ chain: Mainnet })
const dpt = new DPT(key, {
  endpoint: { address: host, udpPort, tcpPort },
  refreshInterval: 600000,
  shouldFindNeighbours: true,
  timeout: 2000,
})
const rlpx = new RLPx(key, {
  dpt: null,
  maxPeers: 25,
  capabilities: [CHAT.chat],
  common,
  listenPort: tcpPort,
  timeout: 5000,
})
const peers = new Map()

dpt.events.on('error', (err) => emit({ event: 'error', where: 'dpt', message: String(err?.message ?? err) }))
dpt.events.on('peer:added', (p) =>
  emit({ event: 'dpt_peer_added', id: hex(p.id), address: p.address, udpPort: p.udpPort, tcpPort: p.tcpPort }),
)
rlpx.events.on('error', (err) => emit({ event: 'error', where: 'rlpx', message: String(err?.message ?? err) }))
rlpx.events.on('peer:error', (peer, err) => emit({ event: 'error', where: 'peer', message: String(err?.message ?? err) }))
rlpx.events.on('peer:added', (peer) => {
  const id = hex(peer.getId())
  peers.set(id, peer)
  const hello = peer.getHelloMessage()
  for (const proto of peer.getProtocols()) {
    proto.events.on('message', (code, payload) => {
      emit({ event: 'message', id, code, payload: payload.map((x) => hex(x)) })
    })
  }
  emit({
    event: 'peer_added',
    id,
    clientId: typeof hello.clientId === 'string' ? hello.clientId : new TextDecoder().decode(hello.clientId),
    protocolVersion: hello.protocolVersion,
    capabilities: hello.capabilities,
    port: hello.port,
  })
})
rlpx.events.on('peer:removed', (peer, reason, disconnectWe) => {
  const id = hex(peer.getId() ?? new Uint8Array())
  peers.delete(id)
  emit({ event: 'peer_removed', id, reason: typeof reason === 'number' ? reason : String(reason), disconnectWe })
})

let ready = 0
const onReady = () => {
  if (++ready < 2) return
  // With port 0 the OS picks the ports; announce the real ones (in ping's `from`
  // endpoint and in hello), as ethereumjs would encode 0 as two zero bytes.
  const udp = dpt._server._socket.address().port
  const tcp = rlpx._server.address().port
  dpt._server._endpoint = { address: host, udpPort: udp, tcpPort: tcp }
  rlpx._listenPort = tcp
  emit({ event: 'ready', id: hex(dpt.id), udp, tcp })
}
dpt.events.once('listening', onReady)
rlpx.events.once('listening', onReady)
dpt.bind(udpPort, host)
rlpx.listen(tcpPort, host)

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let c
  try {
    c = JSON.parse(line)
  } catch {
    return emit({ event: 'error', where: 'stdin', message: 'bad json' })
  }
  try {
    switch (c.cmd) {
      case 'bootstrap':
        await dpt.bootstrap({ address: c.address, udpPort: c.udpPort, tcpPort: c.tcpPort })
        emit({ event: 'bootstrapped' })
        break
      case 'dpt_peers':
        emit({
          event: 'dpt_peers',
          peers: dpt.getPeers().map((p) => ({ id: hex(p.id), address: p.address, udpPort: p.udpPort, tcpPort: p.tcpPort })),
        })
        break
      case 'connect':
        await rlpx.connect({ id: hexToBytes('0x' + c.id), address: c.address, tcpPort: c.tcpPort })
        break
      case 'send': {
        const peer = peers.get(c.id)
        peer.getProtocols()[0].sendMessage(c.code, c.payload.map((x) => hexToBytes('0x' + x)))
        emit({ event: 'sent', id: c.id })
        break
      }
      case 'disconnect':
        peers.get(c.id).disconnect(c.reason)
        break
      case 'quit':
        rlpx.destroy()
        dpt.destroy()
        emit({ event: 'bye' })
        process.exit(0)
    }
  } catch (err) {
    emit({ event: 'error', where: c.cmd, message: String(err?.message ?? err) })
  }
})
rl.on('close', () => process.exit(0))
