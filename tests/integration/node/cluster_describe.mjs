// cluster_describe.mjs - print kafkajs's view of a cluster as one JSON line.
//
// Not a test (node --test runs only *.test.mjs): tests/integration/test_cluster.py
// runs `node cluster_describe.mjs host:port[,host:port...]` and checks the
// brokers, controller and cluster id that kafkajs's admin.describeCluster()
// (a Metadata request on kafkajs's own protocol code) reports.
// Output: {"brokers":[{"nodeId","host","port"}],"controller":id,"clusterId":"..."}.
// Exit 1 with the error on stderr if kafkajs cannot get it within its bounds.

import kafkajs from 'kafkajs'

const { Kafka, logLevel } = kafkajs
const bootstrap = process.argv[2]
if (!bootstrap) {
  console.error('usage: node cluster_describe.mjs host:port[,host:port...]')
  process.exit(2)
}
const kafka = new Kafka({
  clientId: 'samsa-it-cluster',
  brokers: bootstrap.split(','),
  logLevel: logLevel.NOTHING,
  connectionTimeout: 5000,
  requestTimeout: 10000,
  retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 }
})
const admin = kafka.admin()
try {
  await admin.connect()
  const d = await admin.describeCluster()
  console.log(JSON.stringify(d))
} catch (e) {
  console.error(`kafkajs describeCluster on ${bootstrap}: ${e}`)
  process.exitCode = 1
} finally {
  await admin.disconnect()
}
