// kafkajs 2.x transactions against samsa-broker, unchanged.
//
// kafkajs has its own transactional producer (InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn) and its own read_committed filter
// (the fetch response's aborted transactions, control batches skipped), so this
// exercises the broker's transaction support through a second, independent
// client besides librdkafka (tests/integration/test_transactions.py).
// Covers: one committed and one aborted transaction across three partitions,
// read by a read_committed and a read_uncommitted consumer (exact sets, order
// per partition); consume-transform-produce with sendOffsets, where the group's
// offsets appear only when the transaction commits; and zombie fencing: a
// second producer with the same transactionalId makes the first one's next
// send and commit fail with INVALID_PRODUCER_EPOCH.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import kafkajs from 'kafkajs'
import { uniqueTopic, waitUntil, withBroker, within } from './broker.mjs'

const { Kafka, logLevel } = kafkajs
const T = 120000
// Transaction coordinator settings that keep a short test short.
const BROKER = { 'transaction.abort.timed.out.transaction.cleanup.interval.ms': '500' }

function client (bootstrap, id) {
  return new Kafka({
    clientId: id,
    brokers: [bootstrap],
    logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 20000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 }
  })
}

function txnProducer (kafka, transactionalId) {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 60000,
    allowAutoTopicCreation: false
  })
}

async function createTopics (kafka, topics) {
  const admin = kafka.admin()
  await within(20000, 'admin.connect', admin.connect())
  try {
    const ok = await within(30000, 'admin.createTopics', admin.createTopics({
      topics: topics.map(([topic, numPartitions]) => ({ topic, numPartitions, replicationFactor: 1 })),
      waitForLeaders: true,
      timeout: 20000
    }))
    assert.equal(ok, true, 'createTopics')
  } finally {
    await admin.disconnect()
  }
}

// Messages {partition, value} for one transaction: n per partition, values
// `${tag}-p${p}-${i}`.
function txnMessages (tag, partitions, n) {
  const out = []
  for (let i = 0; i < n; i++) {
    for (const p of partitions) out.push({ partition: p, value: `${tag}-p${p}-${i}` })
  }
  return out
}

async function sendInTxn (producer, topic, msgs, end, extra) {
  const txn = await within(20000, 'producer.transaction', producer.transaction())
  try {
    // two sends, so a transaction carries more than one batch per partition
    const half = Math.ceil(msgs.length / 2)
    for (const part of [msgs.slice(0, half), msgs.slice(half)]) {
      await within(20000, 'txn.send', txn.send({
        topic,
        messages: part.map(({ partition, value }) => ({ partition, key: value, value }))
      }))
    }
    if (extra) await extra(txn)
  } catch (e) {
    await txn.abort().catch(() => {})
    throw e
  }
  await within(20000, `txn.${end}`, end === 'commit' ? txn.commit() : txn.abort())
}

// Read `topic` from the beginning through a fresh consumer group (kafkajs has
// no assign()) with the given isolation, until `expect` messages arrived and
// nothing more came for a quiet second (so extra messages are seen too).
// Returns {partition: [{offset, value}]}, offsets as numbers.
async function consumeAll (kafka, topic, { readUncommitted, expect, groupId }) {
  const consumer = kafka.consumer({
    groupId: groupId || `g-${uniqueTopic('kjs-txn')}`,
    readUncommitted,
    maxWaitTimeInMs: 100,
    sessionTimeout: 10000,
    heartbeatInterval: 500
  })
  const got = {}
  let count = 0
  let last = Date.now()
  let crashed = null
  try {
    await within(20000, 'consumer.connect', consumer.connect())
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    consumer.on(consumer.events.CRASH, (e) => { crashed = e.payload.error })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        (got[partition] ||= []).push({ offset: Number(message.offset), value: message.value.toString() })
        count++
        last = Date.now()
      }
    })
    await waitUntil(() => {
      if (crashed) throw new Error(`consumer crashed: ${crashed}`)
      return count >= expect && Date.now() - last > 1000
    }, 60000, `${expect} messages from ${topic} (readUncommitted=${readUncommitted})`).catch((e) => {
      e.message += `; have ${count}: ${JSON.stringify(got)}`
      throw e
    })
  } finally {
    await consumer.disconnect()
  }
  return got
}

// {partition: [value]} of messages, in produce order per partition.
function byPartition (msgs, partitions) {
  const out = {}
  for (const p of partitions) out[p] = msgs.filter((m) => m.partition === p).map((m) => m.value)
  return out
}

function values (got, partitions) {
  const out = {}
  for (const p of partitions) out[p] = (got[p] || []).map((r) => r.value)
  return out
}

// The KafkaJSProtocolError type anywhere in an error's cause chain.
function errorTypes (e) {
  const types = []
  for (let x = e, depth = 0; x && depth < 10; x = x.cause || x.originalError, depth++) {
    if (x.type) types.push(x.type)
    if (Array.isArray(x.errors)) for (const y of x.errors) types.push(...errorTypes(y))
  }
  return types
}

async function expectFenced (what, promise) {
  let err = null
  try {
    await within(30000, what, promise)
  } catch (e) {
    err = e
  }
  assert.ok(err, `${what} should fail after the producer was fenced`)
  const types = errorTypes(err)
  assert.ok(types.some((t) => t === 'INVALID_PRODUCER_EPOCH' || t === 'PRODUCER_FENCED'),
    `${what}: expected a fencing error, got ${err.name}: ${err.message} (types ${types})`)
}

test('kafkajs txn: commit and abort across partitions, read_committed vs read_uncommitted', { timeout: T }, () =>
  withBroker(async (b) => {
    const kafka = client(b.bootstrap, 'samsa-it-kjs-txn')
    const topic = uniqueTopic('kjs-txn')
    const parts = [0, 1, 2]
    await createTopics(kafka, [[topic, parts.length]])

    const committed1 = txnMessages('c1', parts, 4)
    const aborted = txnMessages('ab', parts, 3)
    const committed2 = txnMessages('c2', [0, 2], 2)
    const producer = txnProducer(kafka, `tx-${topic}`)
    await within(20000, 'producer.connect', producer.connect())
    try {
      await sendInTxn(producer, topic, committed1, 'commit')
      await sendInTxn(producer, topic, aborted, 'abort')
      // after an abort the same producer goes on: its next transaction commits
      await sendInTxn(producer, topic, committed2, 'commit')
    } finally {
      await producer.disconnect()
    }

    const committed = [...committed1, ...committed2]
    const rc = await consumeAll(kafka, topic, { readUncommitted: false, expect: committed.length })
    assert.deepEqual(values(rc, parts), byPartition(committed, parts), 'read_committed sees the committed messages only')

    const all = [...committed1, ...aborted, ...committed2]
    const ru = await consumeAll(kafka, topic, { readUncommitted: true, expect: all.length })
    assert.deepEqual(values(ru, parts), byPartition(all, parts), 'read_uncommitted sees committed and aborted')

    // Each transaction leaves one marker per partition it wrote: read_uncommitted
    // offsets skip exactly those (partition 1: 4 c1, marker, 3 ab, marker).
    assert.deepEqual(ru[1].map((r) => r.offset), [0, 1, 2, 3, 5, 6, 7], 'partition 1 offsets around the markers')
    assert.deepEqual(rc[0].map((r) => r.offset), [0, 1, 2, 3, 9, 10], 'partition 0 committed offsets')
  }, BROKER))

test('kafkajs txn: consume-transform-produce, sendOffsets commits group offsets only on commit', { timeout: T }, () =>
  withBroker(async (b) => {
    const kafka = client(b.bootstrap, 'samsa-it-kjs-ctp')
    const input = uniqueTopic('kjs-in')
    const output = uniqueTopic('kjs-out')
    const parts = [0, 1]
    const N = 10 // input messages per partition
    const K = 4 // consumed (and transformed) per partition in one transaction
    await createTopics(kafka, [[input, parts.length], [output, parts.length]])

    const plain = kafka.producer({ allowAutoTopicCreation: false })
    await plain.connect()
    try {
      await within(30000, 'produce input', plain.send({
        topic: input,
        acks: -1,
        messages: txnMessages('in', parts, N).map(({ partition, value }) => ({ partition, value }))
      }))
    } finally {
      await plain.disconnect()
    }

    const group = `g-ctp-${input}`
    const admin = kafka.admin()
    await admin.connect()
    const groupOffsets = async () => {
      const res = await within(20000, 'admin.fetchOffsets', admin.fetchOffsets({ groupId: group, topics: [input] }))
      const t = res.find((x) => x.topic === input)
      return Object.fromEntries(t.partitions.map((p) => [p.partition, p.offset]))
    }
    const producer = txnProducer(kafka, `tx-ctp-${input}`)
    await producer.connect()
    try {
      // The transformation of the first K input messages of each partition,
      // with the consumed position K as the group's offset.
      const transform = (tag) => parts.flatMap((p) =>
        Array.from({ length: K }, (_, i) => ({ partition: p, value: `${tag}:in-p${p}-${i}`.toUpperCase() })))
      const offsets = (txn) => within(20000, 'txn.sendOffsets', txn.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic: input, partitions: parts.map((p) => ({ partition: p, offset: String(K) })) }]
      }))

      await sendInTxn(producer, output, transform('aborted'), 'abort', offsets)
      assert.deepEqual(await groupOffsets(), { 0: '-1', 1: '-1' }, 'no group offsets after the abort')

      await sendInTxn(producer, output, transform('done'), 'commit', offsets)
      await waitUntil(async () => {
        const o = await groupOffsets()
        return o[0] === String(K) && o[1] === String(K)
      }, 20000, `group offsets ${K} after the commit`)
    } finally {
      await producer.disconnect()
      await admin.disconnect()
    }

    // A consumer of the group resumes at the committed offsets: the rest of the input.
    const rest = await consumeAll(kafka, input, { readUncommitted: false, expect: parts.length * (N - K), groupId: group })
    const want = {}
    for (const p of parts) want[p] = Array.from({ length: N - K }, (_, i) => `in-p${p}-${K + i}`)
    assert.deepEqual(values(rest, parts), want, 'group resumes after the committed offsets')

    const out = await consumeAll(kafka, output, { readUncommitted: false, expect: parts.length * K })
    const wantOut = {}
    for (const p of parts) wantOut[p] = Array.from({ length: K }, (_, i) => `DONE:IN-P${p}-${i}`)
    assert.deepEqual(values(out, parts), wantOut, 'read_committed output: the committed transformation only')
  }, BROKER))

test('kafkajs txn: a second producer with the same transactionalId fences the first', { timeout: T }, () =>
  withBroker(async (b) => {
    const kafka = client(b.bootstrap, 'samsa-it-kjs-fence')
    const topic = uniqueTopic('kjs-fence')
    const parts = [0, 1]
    await createTopics(kafka, [[topic, parts.length]])
    const txnId = `tx-${topic}`

    const first = txnProducer(kafka, txnId)
    const second = txnProducer(kafka, txnId)
    await within(20000, 'first.connect', first.connect())
    try {
      await sendInTxn(first, topic, txnMessages('first-ok', parts, 2), 'commit')

      // The first producer is mid-transaction (partition 0 added, one message
      // sent) when the second one initialises with the same id (kafkajs sends
      // the transactional InitProducerId at its first transaction(), not at
      // connect()): the coordinator aborts the open transaction and bumps the
      // epoch.
      const zombieTxn = await first.transaction()
      await within(20000, 'zombie send', zombieTxn.send({ topic, messages: [{ partition: 0, value: 'zombie-0' }] }))
      await within(30000, 'second.connect', second.connect())
      const secondTxn = await within(30000, 'second.transaction', second.transaction())

      // Its next send (to a partition already in the transaction, then to a
      // new one) and its commit all fail with a fencing error.
      await expectFenced('zombie send to partition 0',
        zombieTxn.send({ topic, messages: [{ partition: 0, value: 'zombie-1' }] }))
      await expectFenced('zombie send to partition 1',
        zombieTxn.send({ topic, messages: [{ partition: 1, value: 'zombie-2' }] }))
      await expectFenced('zombie commit', zombieTxn.commit())

      await within(20000, 'second send', secondTxn.send({
        topic,
        messages: txnMessages('second-ok', parts, 2).map(({ partition, value }) => ({ partition, value }))
      }))
      await within(20000, 'second commit', secondTxn.commit())
    } finally {
      await first.disconnect().catch(() => {})
      await second.disconnect()
    }

    const want = [...txnMessages('first-ok', parts, 2), ...txnMessages('second-ok', parts, 2)]
    const rc = await consumeAll(kafka, topic, { readUncommitted: false, expect: want.length })
    assert.deepEqual(values(rc, parts), byPartition(want, parts), 'read_committed: no zombie message')
    // read_uncommitted shows the zombie's one stored message (then aborted), nothing more
    const ru = await consumeAll(kafka, topic, { readUncommitted: true, expect: want.length + 1 })
    const wantRu = byPartition(want, parts)
    wantRu[0].splice(2, 0, 'zombie-0')
    assert.deepEqual(values(ru, parts), wantRu, 'read_uncommitted: the zombie message stored once, aborted')
  }, BROKER))
