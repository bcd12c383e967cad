// kafkajs 2.x against samsa-broker, unchanged.
//
// kafkajs negotiates versions with ApiVersions and has its own protocol code.
// Covers: admin createTopics (and again: returns false), listTopics,
// fetchTopicMetadata, deleteTopics; producer with keys, headers, explicit
// partitions and timestamps with both codecs kafkajs ships (None, GZIP; the
// others need plugins); group-free verification of what it wrote (read back
// with @platformatic/kafka's Consumer.fetch, see broker.mjs - kafkajs itself
// cannot consume without a group), including each batch's codec; admin
// fetchTopicOffsets (earliest/latest) and fetchTopicOffsetsByTimestamp; topics
// and offsets intact across a broker restart.  The consumer test needs
// consumer groups (kafkajs has no assign()) - marked "[needs groups]".

import assert from 'node:assert/strict'
import { test } from 'node:test'
import kafkajs from 'kafkajs'
import { readPartitions, uniqueTopic, waitUntil, withBroker, within } from './broker.mjs'

const { Kafka, CompressionTypes, logLevel } = kafkajs
const CODECS = { None: CompressionTypes.None, GZIP: CompressionTypes.GZIP }
const CODEC_IDS = { None: 0, GZIP: 1 }
const PARTITIONS = 3
const PER_CODEC = 30
const T = 120000

function client (bootstrap, id) {
  return new Kafka({
    clientId: id,
    brokers: [bootstrap],
    logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 20000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 }
  })
}

function makeMessages (baseTs) {
  const msgs = []
  let seq = 0
  for (const codec of Object.keys(CODECS)) {
    for (let i = 0; i < PER_CODEC; i++) {
      msgs.push({
        codec,
        partition: seq % PARTITIONS,
        key: Buffer.from(`${codec}-k${i}`),
        value: Buffer.concat([Buffer.from(`kafkajs ${codec} ${i} ünï `.repeat(20)), Buffer.from([0, 255, 7])]),
        headers: { codec: Buffer.from(codec), i: Buffer.from(String(i)), bin: Buffer.from([0, 0xfe]) },
        timestamp: String(baseTs + seq * 10)
      })
      seq++
    }
  }
  return msgs
}

async function produceAll (kafka, topic, msgs) {
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await within(20000, 'producer.connect', producer.connect())
  try {
    for (const [name, type] of Object.entries(CODECS)) {
      const res = await within(30000, `producer.send ${name}`, producer.send({
        topic,
        acks: -1,
        compression: type,
        messages: msgs.filter((m) => m.codec === name)
          .map(({ partition, key, value, headers, timestamp }) => ({ partition, key, value, headers, timestamp }))
      }))
      for (const r of res) assert.equal(r.errorCode, 0, `send ${name}: ${JSON.stringify(r)}`)
    }
  } finally {
    await producer.disconnect()
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
      assert.deepEqual(r.headers.map(([k, v]) => [k.toString(), v.toString('hex')]),
        Object.entries(w.headers).map(([k, v]) => [k, v.toString('hex')]), `${where}: headers`)
      assert.equal(r.timestamp, BigInt(w.timestamp), `${where}: timestamp`)
      assert.equal(r.codec, CODEC_IDS[w.codec], `${where}: batch codec`)
    })
  }
}

async function createTopic (admin, topic) {
  const created = await within(30000, 'admin.createTopics', admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true, timeout: 20000
  }))
  assert.equal(created, true, 'createTopics should report the topic as created')
}

test('kafkajs: admin, produce None+GZIP, group-free read back, offsets, delete', { timeout: T }, () =>
  withBroker(async (b) => {
    const kafka = client(b.bootstrap, 'samsa-it-kjs')
    const admin = kafka.admin()
    await within(20000, 'admin.connect', admin.connect())
    try {
      const topic = uniqueTopic('kjs')
      await createTopic(admin, topic)
      const again = await within(30000, 'createTopics again', admin.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], timeout: 20000
      }))
      assert.equal(again, false, 'creating an existing topic should return false (TOPIC_ALREADY_EXISTS)')
      assert.ok((await admin.listTopics()).includes(topic), 'listTopics')
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      assert.deepEqual(md.topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2])
      assert.ok(md.topics[0].partitions.every((p) => p.leader === 1), JSON.stringify(md))

      const baseTs = Date.now() - 3600000
      const msgs = makeMessages(baseTs)
      await produceAll(kafka, topic, msgs)

      const got = await readPartitions(b.bootstrap, topic, [0, 1, 2])
      checkRead(got, msgs)

      const offs = await within(20000, 'fetchTopicOffsets', admin.fetchTopicOffsets(topic))
      for (const o of offs) {
        const n = got[o.partition].length
        assert.deepEqual([o.low, o.high, o.offset], ['0', String(n), String(n)], `offsets of partition ${o.partition}`)
      }
      for (const p of [0, 1, 2]) {
        for (const r of got[p].filter((_, i) => i % 6 === 0)) {
          const res = await within(20000, 'fetchTopicOffsetsByTimestamp',
            admin.fetchTopicOffsetsByTimestamp(topic, Number(r.timestamp)))
          // For every partition: the first offset with timestamp >= the query.
          for (const { partition, offset } of res) {
            const first = got[partition].find((x) => x.timestamp >= r.timestamp)
            const want = first ? String(first.offset) : String(got[partition].length)
            assert.equal(offset, want, `partition ${partition}, timestamp ${r.timestamp}`)
          }
        }
      }

      await within(30000, 'deleteTopics', admin.deleteTopics({ topics: [topic], timeout: 20000 }))
      await waitUntil(async () => !(await admin.listTopics()).includes(topic), 30000, `${topic} gone`)
    } finally {
      await admin.disconnect()
    }
  }))

test('kafkajs: topics and offsets intact across a broker restart', { timeout: T }, () =>
  withBroker(async (b) => {
    const topic = uniqueTopic('kjs-rs')
    let kafka = client(b.bootstrap, 'samsa-it-kjs')
    let admin = kafka.admin()
    await admin.connect()
    const msgs = makeMessages(Date.now() - 60000)
    let before
    try {
      await createTopic(admin, topic)
      await produceAll(kafka, topic, msgs)
      before = await admin.fetchTopicOffsets(topic)
    } finally {
      await admin.disconnect()
    }
    await b.restart()
    kafka = client(b.bootstrap, 'samsa-it-kjs')
    admin = kafka.admin()
    await admin.connect()
    try {
      assert.ok((await admin.listTopics()).includes(topic), 'topic listed after restart')
      const after = await within(20000, 'fetchTopicOffsets', admin.fetchTopicOffsets(topic))
      const norm = (xs) => xs.map(({ partition, offset, high, low }) => ({ partition, offset, high, low }))
        .sort((x, y) => x.partition - y.partition)
      assert.deepEqual(norm(after), norm(before), 'offsets after restart')
      checkRead(await readPartitions(b.bootstrap, topic, [0, 1, 2]), msgs)
    } finally {
      await admin.disconnect()
    }
  }))

test('kafkajs [needs groups]: consumer.run reads everything from the beginning', { timeout: T }, () =>
  withBroker(async (b) => {
    const topic = uniqueTopic('kjs-grp')
    const kafka = client(b.bootstrap, 'samsa-it-kjs-grp')
    const admin = kafka.admin()
    await admin.connect()
    try {
      await createTopic(admin, topic)
    } finally {
      await admin.disconnect()
    }
    const msgs = makeMessages(Date.now() - 60000)
    await produceAll(kafka, topic, msgs)

    const consumer = kafka.consumer({ groupId: `g-${topic}`, maxWaitTimeInMs: 100, sessionTimeout: 10000, heartbeatInterval: 500 })
    const seen = []
    try {
      await within(20000, 'consumer.connect', consumer.connect())
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      let done, crashed
      const all = new Promise((resolve, reject) => { done = resolve; crashed = reject })
      // A consumer crash (e.g. FindCoordinator/JoinGroup refused) fails the test at once.
      consumer.on(consumer.events.CRASH, (e) => crashed(new Error(`consumer crashed: ${e.payload.error}`)))
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          seen.push({ partition, message })
          if (seen.length >= msgs.length) done()
        }
      })
      await within(60000, `${msgs.length} messages through the group (have ${seen.length})`, all)
    } finally {
      await consumer.disconnect()
    }
    for (let p = 0; p < PARTITIONS; p++) {
      const want = msgs.filter((m) => m.partition === p)
      const have = seen.filter((s) => s.partition === p).map((s) => s.message)
      assert.deepEqual(have.map((m) => m.offset), want.map((_, i) => String(i)), `partition ${p} offsets`)
      want.forEach((w, i) => {
        assert.ok(w.key.equals(have[i].key), `partition ${p} #${i} key`)
        assert.ok(w.value.equals(have[i].value), `partition ${p} #${i} value`)
        assert.equal(have[i].timestamp, w.timestamp, `partition ${p} #${i} timestamp`)
        for (const [k, v] of Object.entries(w.headers)) {
          assert.ok(v.equals(have[i].headers[k]), `partition ${p} #${i} header ${k}`)
        }
      })
    }
  }))
