// @platformatic/kafka 1.x against samsa-broker, unchanged.
//
// This client speaks only recent protocol versions (Metadata v9+ with topic
// ids, Fetch v12+ by topic id, Produce v7+, ListOffsets v5+, flexible
// encodings).  Covers: Admin create/list/delete; Producer with keys, headers,
// explicit partitions and timestamps for every codec it supports on this Node
// (zstd only where node:zlib has it); group-free reads with Consumer.fetch()
// giving everything back byte-identical in offset order, each batch with the
// codec it was produced with; ListOffsets latest/earliest/by timestamp; data
// intact across a broker restart.  The consume-stream test needs consumer
// groups (JoinGroup/SyncGroup/Heartbeat/OffsetCommit) - marked "[needs groups]".

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin, Consumer, Producer, ProduceAcks, compressionsAlgorithms } from '@platformatic/kafka'
import { readPartitions, uniqueTopic, waitUntil, withBroker, within } from './broker.mjs'

const CODEC_IDS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }
const CODECS = Object.keys(CODEC_IDS).filter((c) => compressionsAlgorithms[c]?.available)
const PARTITIONS = 3
const PER_CODEC = 24
const T = 120000 // per-test bound

function makeMessages (topic, baseTs) {
  const msgs = []
  let seq = 0
  for (const codec of CODECS) {
    for (let i = 0; i < PER_CODEC; i++) {
      msgs.push({
        codec,
        topic,
        partition: seq % PARTITIONS,
        key: Buffer.from(`${codec}-key-${i}`),
        value: Buffer.concat([Buffer.from(`platformatic ${codec} ${i} ünï `.repeat(20)), Buffer.from([0, 255, 1, 254])]),
        headers: new Map([[Buffer.from('codec'), Buffer.from(codec)], [Buffer.from('i'), Buffer.from(String(i))], [Buffer.from('bin'), Buffer.from([0, 0xff])]]),
        timestamp: BigInt(baseTs + seq * 10)
      })
      seq++
    }
  }
  return msgs
}

async function produceAll (bootstrap, msgs) {
  const producer = new Producer({ clientId: 'samsa-it-plt', bootstrapBrokers: [bootstrap], acks: ProduceAcks.ALL, retries: 2 })
  try {
    for (const codec of CODECS) {
      const batch = msgs.filter((m) => m.codec === codec)
        .map(({ topic, partition, key, value, headers, timestamp }) => ({ topic, partition, key, value, headers, timestamp }))
      await within(30000, `send (${codec})`, producer.send({ messages: batch, compression: codec }))
    }
  } finally {
    await producer.close()
  }
}

function checkRead (got, msgs) {
  for (let p = 0; p < PARTITIONS; p++) {
    const want = msgs.filter((m) => m.partition === p)
    const have = got[p]
    assert.deepEqual(have.map((r) => r.offset), want.map((_, i) => BigInt(i)), `partition ${p} offsets`)
    want.forEach((w, i) => {
      const r = have[i]
      const where = `partition ${p} offset ${r.offset} (${w.codec})`
      assert.ok(w.key.equals(r.key), `${where}: key`)
      assert.ok(w.value.equals(r.value), `${where}: value`)
      assert.deepEqual(r.headers.map(([k, v]) => [k.toString('latin1'), v.toString('latin1')]),
        [...w.headers].map(([k, v]) => [k.toString('latin1'), v.toString('latin1')]), `${where}: headers`)
      assert.equal(r.timestamp, w.timestamp, `${where}: timestamp`)
      assert.equal(r.codec, CODEC_IDS[w.codec], `${where}: batch codec ${r.codec}, produced with ${w.codec}`)
    })
  }
}

test('platformatic: admin, produce every codec, group-free fetch, list offsets, delete', { timeout: T }, () =>
  withBroker(async (b) => {
    const topic = uniqueTopic('plt')
    const admin = new Admin({ clientId: 'samsa-it-plt-admin', bootstrapBrokers: [b.bootstrap], retries: 2 })
    try {
      await within(30000, 'createTopics', admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 }))
      await assert.rejects(within(30000, 'createTopics again', admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })),
        (e) => /already exists|TOPIC_ALREADY_EXISTS/i.test(JSON.stringify(e, Object.getOwnPropertyNames(e)) + e.message),
        'creating an existing topic must fail with TOPIC_ALREADY_EXISTS')
      await waitUntil(async () => (await admin.listTopics()).includes(topic), 20000, `${topic} listed`)

      const baseTs = Date.now() - 3600000
      const msgs = makeMessages(topic, baseTs)
      await produceAll(b.bootstrap, msgs)

      const got = await readPartitions(b.bootstrap, topic, [...Array(PARTITIONS).keys()])
      checkRead(got, msgs)

      const c = new Consumer({ groupId: 'unused-plt', clientId: 'samsa-it-plt-offsets', bootstrapBrokers: [b.bootstrap], retries: 2 })
      try {
        const latest = (await within(20000, 'listOffsets latest', c.listOffsets({ topics: [topic] }))).get(topic)
        assert.deepEqual(latest.map(Number), [...Array(PARTITIONS).keys()].map((p) => got[p].length), 'latest offsets')
        const earliest = (await within(20000, 'listOffsets earliest', c.listOffsets({ topics: [topic], timestamp: -2n }))).get(topic)
        assert.deepEqual(earliest.map(Number), Array(PARTITIONS).fill(0), 'earliest offsets')
        for (let p = 0; p < PARTITIONS; p++) {
          for (const r of got[p].filter((_, i) => i % 5 === 0)) {
            for (const q of [r.timestamp, r.timestamp - 3n]) {
              const res = (await within(20000, 'listOffsetsWithTimestamps', c.listOffsetsWithTimestamps({ topics: [topic], partitions: { [topic]: [p] }, timestamp: q }))).get(topic).get(p)
              assert.equal(res.offset, r.offset, `offset for timestamp ${q} in partition ${p}`)
            }
          }
        }
      } finally {
        await c.close()
      }

      await within(30000, 'deleteTopics', admin.deleteTopics({ topics: [topic] }))
      await waitUntil(async () => !(await admin.listTopics()).includes(topic), 30000, `${topic} gone`)
    } finally {
      await admin.close()
    }
  }))

test('platformatic: data and topics intact across a broker restart', { timeout: T }, () =>
  withBroker(async (b) => {
    const topic = uniqueTopic('plt-rs')
    const admin = new Admin({ clientId: 'samsa-it-plt-admin', bootstrapBrokers: [b.bootstrap], retries: 2 })
    try {
      await within(30000, 'createTopics', admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 }))
    } finally {
      await admin.close()
    }
    const msgs = makeMessages(topic, Date.now() - 60000)
    await produceAll(b.bootstrap, msgs)
    const before = await readPartitions(b.bootstrap, topic, [0, 1, 2])
    await b.restart()
    const after = await readPartitions(b.bootstrap, topic, [0, 1, 2])
    assert.deepEqual(after, before, 'partitions differ after restart')
    checkRead(after, msgs)
  }))

test('platformatic [needs groups]: consumer stream reads everything from earliest', { timeout: T }, () =>
  withBroker(async (b) => {
    const topic = uniqueTopic('plt-grp')
    const admin = new Admin({ clientId: 'samsa-it-plt-admin', bootstrapBrokers: [b.bootstrap], retries: 2 })
    try {
      await within(30000, 'createTopics', admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 }))
    } finally {
      await admin.close()
    }
    const msgs = makeMessages(topic, Date.now() - 60000)
    await produceAll(b.bootstrap, msgs)

    const consumer = new Consumer({ groupId: `g-${topic}`, clientId: 'samsa-it-plt-grp', bootstrapBrokers: [b.bootstrap], maxWaitTime: 100, retries: 2 })
    const seen = []
    try {
      const stream = await within(30000, 'consume() (FindCoordinator/JoinGroup/SyncGroup)',
        consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, sessionTimeout: 10000, heartbeatInterval: 500 }))
      await within(60000, `reading ${msgs.length} messages through the group`, (async () => {
        for await (const m of stream) {
          seen.push(m)
          if (seen.length === msgs.length) break
        }
      })())
      await stream.close()
    } finally {
      await consumer.close(true)
    }
    for (let p = 0; p < PARTITIONS; p++) {
      const want = msgs.filter((m) => m.partition === p)
      const have = seen.filter((m) => m.partition === p)
      assert.deepEqual(have.map((m) => BigInt(m.offset)), want.map((_, i) => BigInt(i)), `partition ${p} offsets`)
      want.forEach((w, i) => {
        assert.ok(w.key.equals(have[i].key), `partition ${p} #${i} key`)
        assert.ok(w.value.equals(have[i].value), `partition ${p} #${i} value`)
      })
    }
  }))
