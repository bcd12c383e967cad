// broker.mjs - start and stop a real samsa-broker for the Node.js client tests.
//
// Role: the node twin of tests/integration/conftest.py.  startBroker() picks
// three free loopback ports (PLAINTEXT, CONTROLLER and metrics.listener, so
// parallel brokers never share 9644), writes a temp config and
// data dir, spawns bin/samsa-broker with stdout+stderr appended to one log
// file, and waits - a bounded poll, never a bare sleep - until the process has
// logged "serving" and the port accepts connections.  close() stops it with
// SIGTERM and throws unless every graceful stop exited 0 and the log has no
// ERROR line or sanitizer report.  withBroker(fn) wraps a test body so that a
// failure carries the broker's log tail.
//
// Env: SAMSA_BROKER (binary), SAMSA_IT_LOG_LEVEL (-> SAMSA_LOG_LEVEL),
// SAMSA_IT_START_TIMEOUT (seconds, default 60).

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const REPO = path.resolve(here, '..', '..', '..')
const BROKER_BIN = process.env.SAMSA_BROKER || path.join(REPO, 'bin', 'samsa-broker')
const START_TIMEOUT_MS = Number(process.env.SAMSA_IT_START_TIMEOUT || 60) * 1000
const STOP_TIMEOUT_MS = 30000
const BAD_LOG = /\bERROR\b|AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|runtime error:|Segmentation fault/

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function uniqueTopic (prefix = 't') {
  return `${prefix}-${randomBytes(5).toString('hex')}`
}

// Poll fn() until it returns a truthy value; throw naming `what` after timeoutMs.
export async function waitUntil (fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last}`)
    }
    await sleep(50)
  }
}

async function freePorts (n) {
  const servers = []
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer()
      await new Promise((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
      servers.push(s)
    }
    return servers.map((s) => s.address().port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}

function portAccepts (port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    const done = (ok) => { sock.destroy(); resolve(ok) }
    sock.setTimeout(500, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

export class Broker {
  constructor (workdir, port, controllerPort, overrides, metricsPort = 0) {
    this.workdir = workdir
    this.port = port
    this.controllerPort = controllerPort
    this.metricsPort = metricsPort
    this.metricsUrl = `http://127.0.0.1:${metricsPort}`
    this.bootstrap = `127.0.0.1:${port}`
    this.dataDir = path.join(workdir, 'data')
    this.logPath = path.join(workdir, 'broker.log')
    this.configPath = path.join(workdir, 'server.properties')
    this.proc = null
    this.exitCodes = []
    this.starts = 0
    fs.mkdirSync(this.dataDir, { recursive: true })
    const props = {
      'node.id': '1',
      'process.roles': 'broker,controller',
      listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names': 'CONTROLLER',
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
      'log.dirs': this.dataDir,
      'metrics.listener': this.metricsUrl,
      'num.partitions': '3',
      'auto.create.topics.enable': 'true',
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'group.initial.rebalance.delay.ms': '0',
      ...overrides
    }
    fs.writeFileSync(this.configPath, '# written by tests/integration/node/broker.mjs\n' +
      Object.entries(props).map(([k, v]) => `${k}=${v}\n`).join(''))
  }

  async start () {
    if (this.proc) throw new Error('broker already running')
    try {
      fs.accessSync(BROKER_BIN, fs.constants.X_OK)
    } catch {
      throw new Error(`broker binary ${BROKER_BIN} missing (run make build)`)
    }
    this.starts++
    fs.appendFileSync(this.logPath, `=== start #${this.starts}: ${BROKER_BIN} ${this.configPath}\n`)
    const startOffset = fs.statSync(this.logPath).size
    const fd = fs.openSync(this.logPath, 'a')
    const env = { ...process.env }
    if (process.env.SAMSA_IT_LOG_LEVEL) env.SAMSA_LOG_LEVEL = process.env.SAMSA_IT_LOG_LEVEL
    const proc = spawn(BROKER_BIN, [this.configPath], { cwd: this.workdir, env, stdio: ['ignore', fd, fd] })
    fs.closeSync(fd)
    this.proc = proc
    proc.exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve(code ?? `signal ${sig}`)))
    let exitCode
    proc.exited.then((c) => { exitCode = c })
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (exitCode !== undefined) {
        this.proc = null
        throw new Error(`samsa-broker exited ${exitCode} during startup; log tail:\n${this.logTail()}`)
      }
      const fresh = fs.readFileSync(this.logPath).subarray(startOffset).toString()
      if (fresh.includes('serving') && await portAccepts(this.port)) return this
      if (Date.now() > deadline) {
        await this.kill9()
        throw new Error(`samsa-broker not serving after ${START_TIMEOUT_MS} ms; log tail:\n${this.logTail()}`)
      }
      await sleep(50)
    }
  }

  // SIGTERM, bounded wait; records and returns the exit status.
  async stop () {
    const proc = this.proc
    if (!proc) return null
    proc.kill('SIGTERM')
    let timer
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS) })
    let code = await Promise.race([proc.exited, timeout])
    clearTimeout(timer)
    if (code === 'timeout') {
      proc.kill('SIGKILL')
      await proc.exited
      code = `hung: no exit ${STOP_TIMEOUT_MS} ms after SIGTERM (killed)`
    }
    this.proc = null
    this.exitCodes.push(code)
    return code
  }

  async restart () {
    const code = await this.stop()
    if (code !== 0) throw new Error(`graceful stop exited ${code}; log tail:\n${this.logTail()}`)
    return this.start()
  }

  async kill9 () {
    const proc = this.proc
    if (!proc) return
    proc.kill('SIGKILL')
    await proc.exited
    this.proc = null
  }

  logText () {
    try {
      return fs.readFileSync(this.logPath, 'utf8')
    } catch {
      return ''
    }
  }

  logTail (n = 80) {
    return this.logText().split('\n').slice(-n).join('\n')
  }

  // Stop and report problems (non-zero exits, ERROR lines); [] if all is well.
  async close () {
    await this.stop()
    const problems = []
    const bad = this.exitCodes.filter((c) => c !== 0)
    if (bad.length) problems.push(`graceful stop(s) did not exit 0: ${bad.join(', ')}`)
    const badLines = this.logText().split('\n').filter((l) => BAD_LOG.test(l))
    if (badLines.length) problems.push('broker log has ERROR/sanitizer lines:\n  ' + badLines.slice(0, 20).join('\n  '))
    return problems
  }
}

export async function startBroker (overrides = {}) {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'samsa-it-node-'))
  const [port, controllerPort, metricsPort] = await freePorts(3)
  const b = new Broker(workdir, port, controllerPort, overrides, metricsPort)
  await b.start()
  return b
}

// Run fn(broker) against a fresh broker; on failure attach the log tail; always
// stop it and fail if it did not stop cleanly or logged errors.
export async function withBroker (fn, overrides = {}) {
  const b = await startBroker(overrides)
  let failure = null
  try {
    await fn(b)
  } catch (e) {
    failure = e
  }
  const problems = await b.close()
  if (failure) {
    failure.message += `\n----- samsa-broker log tail (${b.logPath}) -----\n${b.logTail()}`
    if (problems.length) failure.message += '\n' + problems.join('\n')
    throw failure
  }
  if (problems.length) {
    throw new Error(problems.join('\n') + `\n----- log tail -----\n${b.logTail()}`)
  }
  fs.rmSync(b.workdir, { recursive: true, force: true })
}

// Bound a promise: reject with `what` if it does not settle within ms.
export function within (ms, what, promise) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// Group-free read of whole partitions with @platformatic/kafka's low-level
// Consumer.fetch() (Fetch v12+ by topic id; no consumer group involved), used
// to check what any client produced. Returns {partition: [record]} where a
// record is {offset, key, value, headers: [[Buffer, Buffer]], timestamp, codec}
// (offset/timestamp as BigInt; codec = the batch's compression attribute).
export async function readPartitions (bootstrap, topic, partitions) {
  const { Consumer } = await import('@platformatic/kafka')
  const c = new Consumer({
    groupId: `unused-${randomBytes(4).toString('hex')}`,
    clientId: 'samsa-it-reader',
    bootstrapBrokers: [bootstrap],
    maxWaitTime: 100,
    retries: 2
  })
  try {
    const md = await within(20000, `metadata of ${topic}`, c.metadata({ topics: [topic] }))
    const t = md.topics.get(topic)
    if (!t) throw new Error(`metadata lacks ${topic}`)
    const ends = (await within(20000, `listOffsets ${topic}`, c.listOffsets({ topics: [topic] }))).get(topic)
    const out = {}
    for (const p of partitions) {
      const leader = t.partitions[p].leader
      const end = BigInt(ends[p])
      const recs = []
      let offset = 0n
      for (let round = 0; offset < end; round++) {
        if (round > 200) throw new Error(`reading ${topic}-${p} made no progress at ${offset}`)
        const resp = await within(20000, `fetch ${topic}-${p}@${offset}`, c.fetch({
          node: leader,
          topics: [{
            topicId: t.id,
            partitions: [{ partition: p, currentLeaderEpoch: -1, fetchOffset: offset, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 }]
          }]
        }))
        const part = resp.responses[0].partitions.find((x) => x.partitionIndex === p)
        for (const batch of part.records ?? []) {
          for (const r of batch.records) {
            const o = batch.firstOffset + BigInt(r.offsetDelta)
            if (o < offset) continue
            recs.push({
              offset: o,
              key: r.key,
              value: r.value,
              headers: r.headers,
              timestamp: batch.firstTimestamp + BigInt(r.timestampDelta),
              codec: batch.attributes & 7
            })
            offset = o + 1n
          }
        }
      }
      out[p] = recs
    }
    return out
  } finally {
    await c.close()
  }
}
